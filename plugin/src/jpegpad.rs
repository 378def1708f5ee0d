//! `edgepad` and `jpegsize`: JPEGs whose bytes depend on the picture alone.
//!
//! GStreamer 1.22's jpegenc gives libjpeg raw data rows, and libjpeg reads every row to a
//! whole number of MCUs (8 or 16 pixels). For packed input (RGB) jpegenc copies each row into
//! a buffer of exactly the image's width, so for a width that is not a multiple of 8 libjpeg
//! reads past it into uninitialised heap: the last MCU column, hidden by the decoder but
//! encoded, differs from run to run, and so do the JPEG's bytes (5 different files in 5 runs
//! of the same 50-pixel-wide thumbnail). Rows past the height are not a problem (jpegenc
//! repeats the last one).
//!
//! ```text
//! ... ! video/x-raw,format=RGB,width=50 ! edgepad ! jpegenc ! jpegsize width=50 ! ...
//! ```
//!
//! `edgepad` widens frames to a multiple of `multiple` pixels by repeating each row's last
//! pixel (what libjpeg itself does when it pads), so jpegenc encodes only defined pixels;
//! `jpegsize` then writes the real width into the JPEG's frame header (SOF), which decoders
//! use to drop the padding: the same MCUs as a JPEG of that width, with defined contents.
//! `jpegsize` also tags the JPEG with the ICC profile of its colours (see [`crate::icc`]),
//! from the colorimetry jpegenc puts in its caps.

use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "jpegpad",
        gst::DebugColorFlags::empty(),
        Some("Deterministic JPEG padding"),
    )
});

/// Packed single-plane formats: a pixel is `pixel_stride` bytes to copy.
const PACKED: [gst_video::VideoFormat; 11] = [
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::Gray8,
];

/// The MCU width of the JPEGs jpegenc writes from RGB or 4:4:4 input; 16 for 4:2:x. It must
/// be the JPEG's own: `jpegsize` checks that the padded and the real width span the same
/// MCUs.
const DEFAULT_MULTIPLE: u32 = 8;

/// The widths a `width` field allows after `f`, applied to a fixed value or a range's ends.
fn map_width(s: &mut gst::StructureRef, f: impl Fn(i32) -> (i32, i32)) {
    if let Ok(width) = s.get::<i32>("width") {
        let (low, high) = f(width);
        if low == high {
            s.set("width", low);
        } else {
            s.set("width", gst::IntRange::new(low, high));
        }
    } else if let Ok(range) = s.get::<gst::IntRange<i32>>("width") {
        let (low, _) = f(range.min());
        let (_, high) = f(range.max());
        s.set("width", gst::IntRange::new(low, high.max(low)));
    }
}

fn round_up(width: i32, multiple: i32) -> i32 {
    width
        .checked_add(multiple - 1)
        .map_or(i32::MAX / multiple * multiple, |w| w / multiple * multiple)
}

mod edgepad {
    use super::*;

    #[derive(Default)]
    pub struct EdgePad {
        multiple: Mutex<u32>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for EdgePad {
        const NAME: &'static str = "GstFramecastEdgePad";
        type Type = super::EdgePad;
        type ParentType = gst_video::VideoFilter;

        fn new() -> Self {
            Self {
                multiple: Mutex::new(DEFAULT_MULTIPLE),
            }
        }
    }

    impl ObjectImpl for EdgePad {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                vec![glib::ParamSpecUInt::builder("multiple")
                    .nick("Multiple")
                    .blurb("Widen frames to a multiple of this many pixels")
                    .minimum(1)
                    .maximum(64)
                    .default_value(DEFAULT_MULTIPLE)
                    .mutable_ready()
                    .build()]
            });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            match pspec.name() {
                "multiple" => *self.multiple.lock().unwrap() = value.get().expect("type checked"),
                name => unimplemented!("property {name}"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            match pspec.name() {
                "multiple" => self.multiple.lock().unwrap().to_value(),
                name => unimplemented!("property {name}"),
            }
        }

        fn constructed(&self) {
            self.parent_constructed();
            // Every frame must come out: no QoS dropping.
            self.obj().set_property("qos", false);
        }
    }

    impl GstObjectImpl for EdgePad {}

    impl ElementImpl for EdgePad {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "Edge pad",
                    "Filter/Converter/Video",
                    "Widens frames to a multiple of N pixels by repeating each row's last \
                     pixel (defined pixels for jpegenc's partial MCUs)",
                    "framecast",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst_video::VideoCapsBuilder::new()
                    .format_list(PACKED.iter().copied())
                    .build();
                vec![
                    gst::PadTemplate::new(
                        "src",
                        gst::PadDirection::Src,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("valid template"),
                    gst::PadTemplate::new(
                        "sink",
                        gst::PadDirection::Sink,
                        gst::PadPresence::Always,
                        &caps,
                    )
                    .expect("valid template"),
                ]
            });
            PAD_TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for EdgePad {
        const MODE: gst_base::subclass::BaseTransformMode =
            gst_base::subclass::BaseTransformMode::NeverInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = true;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        fn transform_caps(
            &self,
            direction: gst::PadDirection,
            caps: &gst::Caps,
            filter: Option<&gst::Caps>,
        ) -> Option<gst::Caps> {
            let multiple = *self.multiple.lock().unwrap() as i32;
            let mut other = caps.clone();
            for s in other.make_mut().iter_mut() {
                match direction {
                    // Sink caps to src caps: rounded up.
                    gst::PadDirection::Sink => map_width(s, |w| {
                        let w = round_up(w, multiple);
                        (w, w)
                    }),
                    // Src caps to sink caps: any width that rounds up to it.
                    _ => map_width(s, |w| ((w - multiple + 1).max(1), w)),
                }
            }
            gst::debug!(CAT, imp = self, "{direction:?} {caps} -> {other}");
            Some(match filter {
                Some(filter) => filter.intersect_with_mode(&other, gst::CapsIntersectMode::First),
                None => other,
            })
        }
    }

    impl VideoFilterImpl for EdgePad {
        fn transform_frame(
            &self,
            input: &gst_video::VideoFrameRef<&gst::BufferRef>,
            output: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let pixel = input.format_info().pixel_stride()[0] as usize;
            let (in_width, out_width) = (input.width() as usize, output.width() as usize);
            let height = input.height().min(output.height()) as usize;
            let in_stride = input.plane_stride()[0] as usize;
            let out_stride = output.plane_stride()[0] as usize;
            let src = input.plane_data(0).map_err(|_| gst::FlowError::Error)?;
            let dst = output
                .plane_data_mut(0)
                .map_err(|_| gst::FlowError::Error)?;
            let row_bytes = in_width * pixel;
            for y in 0..height {
                let src = &src[y * in_stride..y * in_stride + row_bytes];
                let dst = &mut dst[y * out_stride..y * out_stride + out_width * pixel];
                dst[..row_bytes].copy_from_slice(src);
                let last = &src[row_bytes - pixel..];
                for extra in dst[row_bytes..].chunks_exact_mut(pixel) {
                    extra.copy_from_slice(last);
                }
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }
}

mod jpegsize {
    use super::*;

    #[derive(Debug, Default, Clone, Copy)]
    struct Size {
        width: u32,
        height: u32,
    }

    #[derive(Default)]
    pub struct JpegSize {
        size: Mutex<Size>,
        /// The APP2 segment with the ICC profile for the current caps, if any.
        profile: Mutex<Option<Vec<u8>>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for JpegSize {
        const NAME: &'static str = "GstFramecastJpegSize";
        type Type = super::JpegSize;
        type ParentType = gst_base::BaseTransform;
    }

    impl ObjectImpl for JpegSize {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
                ["width", "height"]
                    .into_iter()
                    .map(|name| {
                        glib::ParamSpecUInt::builder(name)
                            .blurb("Written into the JPEG's frame header (0: left as is)")
                            .maximum(u16::MAX as u32)
                            .mutable_ready()
                            .build()
                    })
                    .collect()
            });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            let mut size = self.size.lock().unwrap();
            let value = value.get().expect("type checked");
            match pspec.name() {
                "width" => size.width = value,
                "height" => size.height = value,
                name => unimplemented!("property {name}"),
            }
        }

        fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
            let size = self.size.lock().unwrap();
            match pspec.name() {
                "width" => size.width.to_value(),
                "height" => size.height.to_value(),
                name => unimplemented!("property {name}"),
            }
        }
    }

    impl GstObjectImpl for JpegSize {}

    impl ElementImpl for JpegSize {
        fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
            static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                gst::subclass::ElementMetadata::new(
                    "JPEG size",
                    "Filter/Image",
                    "Writes a width and height into a JPEG's frame header (after edgepad) \
                     and tags it with the ICC profile of its colours",
                    "framecast",
                )
            });
            Some(&*METADATA)
        }

        fn pad_templates() -> &'static [gst::PadTemplate] {
            static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                let caps = gst::Caps::new_empty_simple("image/jpeg");
                [gst::PadDirection::Src, gst::PadDirection::Sink]
                    .into_iter()
                    .map(|direction| {
                        let name = if direction == gst::PadDirection::Src {
                            "src"
                        } else {
                            "sink"
                        };
                        gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps)
                            .expect("valid template")
                    })
                    .collect()
            });
            PAD_TEMPLATES.as_ref()
        }
    }

    impl BaseTransformImpl for JpegSize {
        const MODE: gst_base::subclass::BaseTransformMode =
            gst_base::subclass::BaseTransformMode::AlwaysInPlace;
        const PASSTHROUGH_ON_SAME_CAPS: bool = false;
        const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

        fn transform_caps(
            &self,
            direction: gst::PadDirection,
            caps: &gst::Caps,
            filter: Option<&gst::Caps>,
        ) -> Option<gst::Caps> {
            let size = *self.size.lock().unwrap();
            let mut other = caps.clone();
            for s in other.make_mut().iter_mut() {
                for (field, value) in [("width", size.width), ("height", size.height)] {
                    if value == 0 {
                        continue;
                    }
                    match direction {
                        gst::PadDirection::Sink => s.set(field, value as i32),
                        _ => s.remove_field(field),
                    }
                }
            }
            Some(match filter {
                Some(filter) => filter.intersect_with_mode(&other, gst::CapsIntersectMode::First),
                None => other,
            })
        }

        fn set_caps(
            &self,
            incaps: &gst::Caps,
            outcaps: &gst::Caps,
        ) -> Result<(), gst::LoggableError> {
            let colorimetry = incaps
                .structure(0)
                .and_then(|s| s.get::<&str>("colorimetry").ok())
                .and_then(|text| text.parse::<gst_video::VideoColorimetry>().ok());
            let profile = colorimetry
                .as_ref()
                .and_then(crate::icc::profile)
                .and_then(|profile| crate::icc::jpeg_segment(&profile));
            gst::debug!(
                CAT,
                imp = self,
                "colorimetry {colorimetry:?}: ICC profile of {:?} bytes",
                profile.as_ref().map(Vec::len)
            );
            *self.profile.lock().unwrap() = profile;
            self.parent_set_caps(incaps, outcaps)
        }

        fn transform_ip(
            &self,
            buffer: &mut gst::BufferRef,
        ) -> Result<gst::FlowSuccess, gst::FlowError> {
            let size = *self.size.lock().unwrap();
            let fail = |reason: String| {
                gst::element_imp_error!(self, gst::StreamError::Format, ["{reason}"]);
                gst::FlowError::Error
            };
            let tagged = {
                let mut map = buffer.map_writable().map_err(|_| gst::FlowError::Error)?;
                super::set_jpeg_size(&mut map, size.width as u16, size.height as u16)
                    .map_err(fail)?;
                match &*self.profile.lock().unwrap() {
                    Some(segment) => Some(
                        crate::icc::with_segment(&map, segment)
                            .ok_or_else(|| fail("not a JPEG".into()))?,
                    ),
                    None => None,
                }
            };
            if let Some(tagged) = tagged {
                buffer.replace_all_memory(gst::Memory::from_mut_slice(tagged));
            }
            Ok(gst::FlowSuccess::Ok)
        }
    }
}

glib::wrapper! {
    pub struct EdgePad(ObjectSubclass<edgepad::EdgePad>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

glib::wrapper! {
    pub struct JpegSize(ObjectSubclass<jpegsize::JpegSize>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Writes `width` and `height` (0: left as is) into the frame header (SOF) of the JPEG in
/// `data`. Refused when the new size spans other MCUs than the encoded one (the scan would
/// no longer match the header) or the JPEG has no frame header before its scan.
fn set_jpeg_size(data: &mut [u8], width: u16, height: u16) -> Result<(), String> {
    let mut at = 2; // After SOI.
    while at + 4 <= data.len() {
        if data[at] != 0xFF {
            return Err(format!("no JPEG marker at byte {at}"));
        }
        let marker = data[at + 1];
        let length = u16::from_be_bytes([data[at + 2], data[at + 3]]) as usize;
        match marker {
            // SOF0-15, except DHT (C4), JPG (C8) and DAC (CC): precision, height, width,
            // then each component's id, sampling factors (h << 4 | v) and table.
            0xC0..=0xCF if ![0xC4, 0xC8, 0xCC].contains(&marker) => {
                let header = data
                    .get(at + 4..at + 2 + length)
                    .ok_or("truncated frame header")?;
                let components = header.get(6..).unwrap_or_default();
                let count = *header.get(5).ok_or("truncated frame header")? as usize;
                let (mut h_max, mut v_max) = (1u32, 1u32);
                for component in components.chunks_exact(3).take(count) {
                    h_max = h_max.max(u32::from(component[1] >> 4));
                    v_max = v_max.max(u32::from(component[1] & 0x0F));
                }
                let old_height = u16::from_be_bytes([header[1], header[2]]);
                let old_width = u16::from_be_bytes([header[3], header[4]]);
                let mcus = |pixels: u16, factor: u32| u32::from(pixels).div_ceil(8 * factor);
                if width != 0 && mcus(width, h_max) != mcus(old_width, h_max) {
                    return Err(format!(
                        "width {width} is not in the {old_width}-pixel JPEG's MCUs of {} pixels",
                        8 * h_max
                    ));
                }
                if height != 0 && mcus(height, v_max) != mcus(old_height, v_max) {
                    return Err(format!(
                        "height {height} is not in the {old_height}-pixel JPEG's MCUs of {} \
                         pixels",
                        8 * v_max
                    ));
                }
                if height != 0 {
                    data[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
                }
                if width != 0 {
                    data[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
                }
                return Ok(());
            }
            0xDA => return Err("no frame header before the scan".into()),
            _ => at += 2 + length,
        }
    }
    Err("no frame header".into())
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "edgepad",
        gst::Rank::NONE,
        EdgePad::static_type(),
    )?;
    gst::Element::register(
        Some(plugin),
        "jpegsize",
        gst::Rank::NONE,
        JpegSize::static_type(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_the_frame_header_size() {
        // SOI, an APP14 segment, SOF0 for 56x40, SOS.
        let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xEE, 0x00, 0x04, 0xAA, 0xBB];
        jpeg.extend([0xFF, 0xC0, 0x00, 0x11, 0x08, 0x00, 40, 0x00, 56, 0x03]);
        jpeg.extend([0u8; 9]);
        jpeg.extend([0xFF, 0xDA, 0x00, 0x02]);
        // Three components, 1x1 sampling: 8-pixel MCUs.
        jpeg[18..27].copy_from_slice(&[1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1]);
        assert_eq!(set_jpeg_size(&mut jpeg, 50, 0), Ok(()));
        assert_eq!(&jpeg[13..17], &[0x00, 40, 0x00, 50]);
        // 48 spans 6 MCUs where the scan has 7.
        assert!(set_jpeg_size(&mut jpeg, 48, 0).is_err());
        assert!(set_jpeg_size(&mut [0xFF, 0xD8, 0xFF, 0xDA, 0, 2], 50, 0).is_err());
    }

    #[test]
    fn rounds_widths_up() {
        assert_eq!(round_up(50, 16), 64);
        assert_eq!(round_up(48, 16), 48);
        assert_eq!(round_up(1, 8), 8);
    }
}
