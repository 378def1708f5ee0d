//! The ICC profile a JPEG of decoded video gets, so that colour-managed viewers show its
//! colours as a video player shows the frame.
//!
//! The RGB of a thumbnail is the decoder's YCbCr converted with the stream's matrix; its
//! primaries are the stream's (videoconvert does not convert gamuts) and its values are
//! shown by players as they are, with the display's curve. So the profile has the stream's
//! primaries and the sRGB curve: for BT.709 and untagged video, Little CMS's own sRGB
//! profile. Video with a PQ or HLG transfer gets none: its thumbnail is not tone-mapped,
//! and no SDR profile describes it.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use gst::glib::translate::IntoGlib;
use gst_video::{VideoColorPrimaries, VideoColorimetry, VideoTransferFunction};

/// The creation date written into every profile (Little CMS writes the current time):
/// identical requests must give identical bytes (strong ETags, `framecast explain`).
const CREATED: [u16; 6] = [2026, 1, 1, 0, 0, 0];
/// Where the date sits in an ICC header.
const DATE_OFFSET: usize = 24;

/// The ICC profile for RGB of `colorimetry`'s primaries, if one describes it.
pub fn profile(colorimetry: &VideoColorimetry) -> Option<Vec<u8>> {
    if matches!(
        colorimetry.transfer(),
        VideoTransferFunction::Smpte2084 | VideoTransferFunction::AribStdB67
    ) {
        return None;
    }
    let primaries = match colorimetry.primaries() {
        VideoColorPrimaries::Unknown => VideoColorPrimaries::Bt709,
        primaries => primaries,
    };
    static PROFILES: LazyLock<Mutex<HashMap<VideoColorPrimaries, Option<Vec<u8>>>>> =
        LazyLock::new(Default::default);
    PROFILES
        .lock()
        .unwrap()
        .entry(primaries)
        .or_insert_with(|| build(primaries))
        .clone()
}

fn build(primaries: VideoColorPrimaries) -> Option<Vec<u8>> {
    let profile = if primaries == VideoColorPrimaries::Bt709 {
        lcms2::Profile::new_srgb()
    } else {
        // SAFETY: returns a pointer to a static table entry for any enum value.
        let info =
            unsafe { &*gst_video::ffi::gst_video_color_primaries_get_info(primaries.into_glib()) };
        let xy = |x, y| lcms2::CIExyY { x, y, Y: 1.0 };
        let triple = lcms2::CIExyYTRIPLE {
            Red: xy(info.Rx, info.Ry),
            Green: xy(info.Gx, info.Gy),
            Blue: xy(info.Bx, info.By),
        };
        // IEC 61966-2-1: Y = ((X + 0.055) / 1.055)^2.4 above 0.04045, X / 12.92 below.
        let srgb = lcms2::ToneCurve::new_parametric(
            4,
            &[2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045],
        )
        .ok()?;
        let mut profile =
            lcms2::Profile::new_rgb(&xy(info.Wx, info.Wy), &triple, &[&srgb, &srgb, &srgb]).ok()?;
        let mut description = lcms2::MLU::new(1);
        description.set_text_ascii(
            &format!("{primaries:?} primaries, sRGB curve"),
            lcms2::Locale::none(),
        );
        profile.write_tag(
            lcms2::TagSignature::ProfileDescriptionTag,
            lcms2::Tag::MLU(&description),
        );
        profile
    };
    let mut bytes = profile.icc().ok()?;
    for (i, value) in CREATED.iter().enumerate() {
        let at = DATE_OFFSET + 2 * i;
        bytes
            .get_mut(at..at + 2)?
            .copy_from_slice(&value.to_be_bytes());
    }
    Some(bytes)
}

/// The APP2 segment that carries `profile` in a JPEG (ICC.1, annex B: one chunk, as the
/// profiles here are far below a segment's 64 KiB).
pub fn jpeg_segment(profile: &[u8]) -> Option<Vec<u8>> {
    const SIGNATURE: &[u8] = b"ICC_PROFILE\0";
    let length = u16::try_from(2 + SIGNATURE.len() + 2 + profile.len()).ok()?;
    let mut segment = vec![0xFF, 0xE2];
    segment.extend(length.to_be_bytes());
    segment.extend(SIGNATURE);
    segment.extend([1, 1]); // Chunk 1 of 1.
    segment.extend(profile);
    Some(segment)
}

/// `jpeg` with `segment` after its SOI and its JFIF APP0 segment, if any (which must come
/// first).
pub fn with_segment(jpeg: &[u8], segment: &[u8]) -> Option<Vec<u8>> {
    if jpeg.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut at = 2;
    if jpeg.get(at..at + 2)? == [0xFF, 0xE0] {
        let length = u16::from_be_bytes([*jpeg.get(at + 2)?, *jpeg.get(at + 3)?]);
        at += 2 + length as usize;
    }
    let mut out = Vec::with_capacity(jpeg.len() + segment.len());
    out.extend(jpeg.get(..at)?);
    out.extend(segment);
    out.extend(&jpeg[at..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn colorimetry(text: &str) -> VideoColorimetry {
        text.parse().unwrap()
    }

    #[test]
    fn bt709_and_untagged_are_srgb() {
        gst::init().unwrap();
        let srgb = profile(&colorimetry("sRGB")).unwrap();
        assert_eq!(profile(&colorimetry("bt709")), Some(srgb.clone()));
        // Deterministic: the date is fixed.
        assert_eq!(&srgb[24..30], &[0x07, 0xEA, 0, 1, 0, 1]);
        assert_eq!(build(VideoColorPrimaries::Bt709), Some(srgb.clone()));
        let parsed = lcms2::Profile::new_icc(&srgb).unwrap();
        assert_eq!(parsed.color_space(), lcms2::ColorSpaceSignature::RgbData);
    }

    #[test]
    fn other_primaries_get_their_own() {
        gst::init().unwrap();
        let srgb = profile(&colorimetry("sRGB")).unwrap();
        let bt2020 = profile(&colorimetry("bt2020")).unwrap();
        assert_ne!(bt2020, srgb);
        let parsed = lcms2::Profile::new_icc(&bt2020).unwrap();
        let description = parsed
            .info(lcms2::InfoType::Description, lcms2::Locale::none())
            .unwrap();
        assert_eq!(description, "Bt2020 primaries, sRGB curve");
        assert_eq!(profile(&colorimetry("bt2100-pq")), None);
    }

    #[test]
    fn segment_goes_after_jfif() {
        let segment = jpeg_segment(&[1, 2, 3]).unwrap();
        assert_eq!(&segment[..4], &[0xFF, 0xE2, 0, 19]);
        let jfif = [0xFF, 0xD8, 0xFF, 0xE0, 0, 3, 9, 0xFF, 0xDA];
        let tagged = with_segment(&jfif, &segment).unwrap();
        assert_eq!(&tagged[..7], &jfif[..7]);
        assert_eq!(&tagged[7..7 + segment.len()], &segment[..]);
        assert_eq!(&tagged[7 + segment.len()..], &[0xFF, 0xDA]);
        let adobe = [0xFF, 0xD8, 0xFF, 0xEE, 0, 2];
        let tagged = with_segment(&adobe, &segment).unwrap();
        assert_eq!(&tagged[2..2 + segment.len()], &segment[..]);
        assert_eq!(with_segment(&[0, 1], &segment), None);
    }
}
