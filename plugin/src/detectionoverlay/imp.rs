use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::prelude::*;
use gst_video::subclass::prelude::*;

use super::draw::{Canvas, Color, Layout, Rect, Rgb};
use super::source::{trace_at, Entry, Source, SqliteSource, TraceBox, Windowed, PALETTE};
use super::text::Fonts;
use super::Mode;
use crate::detections::DetectionSource;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "detectionoverlay",
        gst::DebugColorFlags::empty(),
        Some("Detection box overlay"),
    )
});

const DEFAULT_FIRST_FRAME: u64 = 0;
const DEFAULT_MODE: Mode = Mode::All;
const DEFAULT_TRACE_ID: i64 = 0;
const DEFAULT_DEBUG: bool = false;

/// Line widths and font scale are given at 720 lines and scaled with the frame height.
const BOX_PX_AT_720: i64 = 2;
const THICK_PX_AT_720: i64 = 4;
const THIN_PX_AT_720: i64 = 1;
/// Font pixels are `height / FONT_LINES_PER_SCALE` frame pixels (at least 1): 2 at 720p, 3
/// at 1080p, where a 7-pixel glyph would be unreadable.
const FONT_LINES_PER_SCALE: i64 = 360;

const GREY: Rgb = Rgb(160, 160, 160);
const PANEL: Rgb = Rgb(0, 0, 0);
const WHITE: Rgb = Rgb(255, 255, 255);
const BLACK: Rgb = Rgb(0, 0, 0);

/// The 8-bit formats [`Layout`] draws on.
const FORMATS: &[gst_video::VideoFormat] = {
    use gst_video::VideoFormat::*;
    &[
        I420, Yv12, Nv12, Nv21, Y42b, Y444, Y41b, Yuy2, Uyvy, Yvyu, Ayuv, Rgbx, Bgrx, Xrgb, Xbgr,
        Rgba, Bgra, Argb, Abgr, Rgb, Bgr, Gray8,
    ]
};

#[derive(Debug, Clone)]
struct Settings {
    catalog: Option<String>,
    file_uuid: Option<String>,
    detections_file: Option<String>,
    first_frame: u64,
    mode: Mode,
    trace_id: i64,
    debug: bool,
    title: Option<String>,
    label_font: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            catalog: None,
            file_uuid: None,
            detections_file: None,
            first_frame: DEFAULT_FIRST_FRAME,
            mode: DEFAULT_MODE,
            trace_id: DEFAULT_TRACE_ID,
            debug: DEFAULT_DEBUG,
            title: None,
            label_font: None,
        }
    }
}

/// Colours and sizes for the negotiated format.
struct Style {
    layout: Layout,
    palette: Vec<Color>,
    /// Label text on each palette colour: dark on light colours, light on dark ones.
    palette_text: Vec<Color>,
    grey: Color,
    panel: Color,
    white: Color,
    fonts: Fonts,
    scale: i64,
    box_px: i64,
    thick_px: i64,
    thin_px: i64,
}

impl Style {
    fn new(layout: Layout, fonts: Fonts) -> Style {
        let height = layout.height();
        let scaled = |px_at_720: i64| ((px_at_720 * height + 360) / 720).max(1);
        Style {
            palette: PALETTE.iter().map(|&rgb| layout.color(rgb)).collect(),
            palette_text: PALETTE
                .iter()
                .map(|&rgb| {
                    layout.color(if Layout::luma(rgb) > 0.5 {
                        BLACK
                    } else {
                        WHITE
                    })
                })
                .collect(),
            grey: layout.color(GREY),
            panel: layout.color(PANEL),
            white: layout.color(WHITE),
            fonts,
            scale: (height / FONT_LINES_PER_SCALE).max(1),
            box_px: scaled(BOX_PX_AT_720),
            thick_px: scaled(THICK_PX_AT_720),
            thin_px: scaled(THIN_PX_AT_720),
            layout,
        }
    }

    /// A detection's outline and, with a caption, its label on a filled background: above
    /// the box, or inside its top when there is no room above.
    fn detection(&self, canvas: &mut Canvas, e: &Entry, thickness: i64, caption: bool) {
        let color = self.palette[e.color];
        canvas.outline(e.x, e.y, e.w, e.h, thickness, color);
        let grow = thickness - 1;
        let visible = e.x + e.w + grow > 0
            && e.y + e.h + grow > 0
            && e.x - grow < canvas.width()
            && e.y - grow < canvas.height();
        // A label is moved into the frame only for a box that is at least partly in it.
        if !caption || e.caption.is_empty() || !visible {
            return;
        }
        let pad = self.scale;
        let label = self.fonts.label(&e.caption, self.scale);
        let (tw, th) = label.size();
        let (lw, lh) = (tw + 2 * pad, th + 2 * pad);
        let above = e.y - grow - lh;
        let ly = if above >= 0 { above } else { (e.y + 1).max(0) };
        // Shifted left to stay whole in the frame, unless it is wider than the frame.
        let lx = (e.x - grow).min(canvas.width() - lw).max(0);
        canvas.fill(Rect::new(lx, ly, lw, lh), color);
        label.draw(canvas, lx + pad, ly + pad, self.palette_text[e.color]);
    }

    /// The info panel, top-left.
    fn panel(&self, canvas: &mut Canvas, lines: &[String]) {
        let pad = 2 * self.scale;
        let labels: Vec<_> = lines
            .iter()
            .map(|line| self.fonts.label(line, self.scale))
            .collect();
        let line_height =
            labels.iter().map(|label| label.size().1).max().unwrap_or(0) + 2 * self.scale;
        let width = labels.iter().map(|label| label.size().0).max().unwrap_or(0);
        let height = lines.len() as i64 * line_height - 2 * self.scale;
        canvas.fill(
            Rect::new(0, 0, width + 2 * pad, height + 2 * pad),
            self.panel,
        );
        for (i, label) in labels.iter().enumerate() {
            label.draw(canvas, pad, pad + i as i64 * line_height, self.white);
        }
    }
}

/// Everything that lives from start to stop.
struct State {
    /// The settings as they were at start: properties may change in READY.
    settings: Settings,
    source: Source,
    /// In mode=trace, the trace's detections sorted by frame.
    trace: Vec<Entry>,
    /// Buffers seen since start.
    frames_seen: u64,
    /// Set once caps are known.
    style: Option<Style>,
}

#[derive(Default)]
pub struct DetectionOverlay {
    settings: Mutex<Settings>,
    /// Given in-process with [`super::DetectionOverlay::set_source`]: not a property, as a
    /// Rust trait object cannot be one.
    given_source: Mutex<Option<Arc<dyn DetectionSource>>>,
    state: Mutex<Option<State>>,
}

impl DetectionOverlay {
    pub(super) fn set_source(&self, source: Arc<dyn DetectionSource>) {
        *self.given_source.lock().unwrap() = Some(source);
        gst::debug!(CAT, imp = self, "Detection source set");
    }

    /// Opens the configured source of detections: at most one of a given source, a
    /// detections file and a catalog.
    fn open_source(
        settings: &Settings,
        given: Option<Arc<dyn DetectionSource>>,
    ) -> Result<Source, gst::ErrorMessage> {
        let settings_error = |msg: &str| gst::error_msg!(gst::ResourceError::Settings, ["{msg}"]);
        match (given, &settings.detections_file, &settings.catalog) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => Err(settings_error(
                "A detection source was given: set neither detections-file nor catalog",
            )),
            (Some(given), None, None) => Ok(Source::Windowed(Windowed::new(given))),
            (None, Some(_), Some(_)) => Err(settings_error(
                "Set either detections-file or catalog (with file-uuid), not both",
            )),
            (None, Some(file), None) => Source::file(Path::new(file))
                .map_err(|msg| gst::error_msg!(gst::ResourceError::Read, ["{msg}"])),
            (None, None, Some(catalog)) => {
                let Some(uuid) = &settings.file_uuid else {
                    return Err(settings_error("catalog is set but file-uuid is not"));
                };
                SqliteSource::open(Path::new(catalog), uuid)
                    .map(|catalog| Source::Windowed(Windowed::new(Arc::new(catalog))))
                    .map_err(|msg| gst::error_msg!(gst::ResourceError::OpenRead, ["{msg}"]))
            }
            (None, None, None) => Ok(Source::None),
        }
    }

    /// Posts a read error for the stream and returns the flow error to give upstream.
    fn read_error(&self, msg: &str) -> gst::FlowError {
        gst::element_imp_error!(self, gst::ResourceError::Read, ["{msg}"]);
        gst::FlowError::Error
    }

    /// The stream time of `pts` as HH:MM:SS.mmm.
    fn stream_time_text(&self, pts: Option<gst::ClockTime>) -> String {
        let segment = self.obj().segment();
        let time = segment
            .downcast_ref::<gst::ClockTime>()
            .and_then(|segment| segment.to_stream_time(pts?));
        match time {
            Some(time) => {
                let ms = time.mseconds();
                format!(
                    "t={:02}:{:02}:{:02}.{:03}",
                    ms / 3_600_000,
                    ms / 60_000 % 60,
                    ms / 1000 % 60,
                    ms % 1000
                )
            }
            None => "t=--:--:--.---".to_owned(),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DetectionOverlay {
    const NAME: &'static str = "GstDetectionOverlay";
    type Type = super::DetectionOverlay;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for DetectionOverlay {
    fn constructed(&self) {
        self.parent_constructed();
        // VideoFilter enables QoS, which drops late buffers before the transform sees them:
        // a dropped buffer would shift the frame numbers of all the buffers after it.
        self.obj().set_property("qos", false);
    }

    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("catalog")
                    .nick("Catalog")
                    .blurb("Path of framecast's SQLite catalog to read detections from (with file-uuid)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("file-uuid")
                    .nick("File UUID")
                    .blurb("The catalog file whose detections are drawn; also shown in the debug panel")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("detections-file")
                    .nick("Detections file")
                    .blurb("Path of a JSON array or JSON lines file of detections, as imported (instead of catalog)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("first-frame")
                    .nick("First frame")
                    .blurb("Frame number of the first buffer after start; each buffer is the next frame (framesrc delivers exactly the frames of its range)")
                    .default_value(DEFAULT_FIRST_FRAME)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mode", DEFAULT_MODE)
                    .nick("Mode")
                    .blurb("Which detections are drawn")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecInt64::builder("trace-id")
                    .nick("Trace id")
                    .blurb("The trace drawn in mode=trace")
                    .default_value(DEFAULT_TRACE_ID)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("debug")
                    .nick("Debug")
                    .blurb("Draw an info panel (title, frame, time, detections, file); in mode=trace also the other detections, thin and grey")
                    .default_value(DEFAULT_DEBUG)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("title")
                    .nick("Title")
                    .blurb("First line of the debug panel")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("label-font")
                    .nick("Label font")
                    .blurb("Pango font families for every label and panel line (e.g. \"DejaVu Sans\"); unset: the 5x7 bitmap font for ASCII text, DejaVu Sans / Noto Sans CJK for the rest")
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        let string = || {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
        };
        match pspec.name() {
            "catalog" => settings.catalog = string(),
            "file-uuid" => settings.file_uuid = string(),
            "detections-file" => settings.detections_file = string(),
            "first-frame" => settings.first_frame = value.get().expect("type checked upstream"),
            "mode" => settings.mode = value.get().expect("type checked upstream"),
            "trace-id" => settings.trace_id = value.get().expect("type checked upstream"),
            "debug" => settings.debug = value.get().expect("type checked upstream"),
            "title" => settings.title = string(),
            "label-font" => settings.label_font = string().filter(|font| !font.is_empty()),
            name => unimplemented!("property {name}"),
        }
        gst::debug!(CAT, imp = self, "{} set to {value:?}", pspec.name());
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "catalog" => settings.catalog.to_value(),
            "file-uuid" => settings.file_uuid.to_value(),
            "detections-file" => settings.detections_file.to_value(),
            "first-frame" => settings.first_frame.to_value(),
            "mode" => settings.mode.to_value(),
            "trace-id" => settings.trace_id.to_value(),
            "debug" => settings.debug.to_value(),
            "title" => settings.title.to_value(),
            "label-font" => settings.label_font.to_value(),
            name => unimplemented!("property {name}"),
        }
    }
}

impl GstObjectImpl for DetectionOverlay {}

impl ElementImpl for DetectionOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Detection overlay",
                "Filter/Effect/Video",
                "Draws detection boxes and labels from framecast's catalog or a detections file",
                "framecast",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list(FORMATS.iter().copied())
                .build();
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

impl BaseTransformImpl for DetectionOverlay {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().unwrap().clone();
        let given = self.given_source.lock().unwrap().clone();
        let source = Self::open_source(&settings, given)?;
        // The trace is small and needed from its first frame: read it whole, once.
        let trace = if settings.mode == Mode::Trace {
            let trace = source
                .trace(settings.trace_id)
                .map_err(|msg| gst::error_msg!(gst::ResourceError::Read, ["{msg}"]))?;
            if trace.is_empty() {
                gst::warning!(
                    CAT,
                    imp = self,
                    "Trace {} has no detections",
                    settings.trace_id
                );
            }
            trace
        } else {
            Vec::new()
        };
        gst::debug!(CAT, imp = self, "Started with {settings:?}");
        *self.state.lock().unwrap() = Some(State {
            settings,
            source,
            trace,
            frames_seen: 0,
            style: None,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock().unwrap() = None;
        Ok(())
    }
}

impl VideoFilterImpl for DetectionOverlay {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let layout = Layout::new(in_info)
            .ok_or_else(|| gst::loggable_error!(CAT, "Cannot draw on {:?}", in_info.format()))?;
        let mut state = self.state.lock().unwrap();
        let state = state
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(CAT, "Caps before start"))?;
        let fonts = Fonts {
            families: state.settings.label_font.clone(),
        };
        state.style = Some(Style::new(layout, fonts));
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }

    fn transform_frame_ip(
        &self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut state = self.state.lock().unwrap();
        let state = state.as_mut().ok_or(gst::FlowError::Flushing)?;
        let n = state.settings.first_frame.saturating_add(state.frames_seen);
        state.frames_seen += 1;
        let settings = &state.settings;
        if settings.mode == Mode::None && !settings.debug {
            return Ok(gst::FlowSuccess::Ok);
        }
        let style = state.style.as_ref().ok_or(gst::FlowError::NotNegotiated)?;
        // The frame's detections: drawn in mode=all, grey in mode=trace with debug, and
        // counted on the panel.
        let on_frame: &[Entry] = if settings.mode == Mode::All || settings.debug {
            state.source.frame(n).map_err(|msg| self.read_error(&msg))?
        } else {
            &[]
        };
        let panel = settings.debug.then(|| {
            let mut lines = Vec::with_capacity(5);
            lines.extend(settings.title.clone());
            lines.push(format!("frame {n}"));
            lines.push(self.stream_time_text(frame.buffer().pts()));
            lines.push(format!("detections {}", on_frame.len()));
            lines.extend(
                settings
                    .file_uuid
                    .as_ref()
                    .map(|uuid| format!("file {uuid}")),
            );
            lines
        });

        let mut strides = [0usize; 4];
        for (stride, &plane_stride) in strides.iter_mut().zip(frame.plane_stride()) {
            *stride = plane_stride as usize;
        }
        let mut canvas = Canvas::new(&style.layout, frame.planes_data_mut(), strides);
        match settings.mode {
            Mode::All => {
                for e in on_frame {
                    style.detection(&mut canvas, e, style.box_px, true);
                }
            }
            Mode::Trace => {
                let others = on_frame
                    .iter()
                    .filter(|e| e.trace_id != Some(settings.trace_id));
                for e in others {
                    canvas.outline(e.x, e.y, e.w, e.h, style.thin_px, style.grey);
                }
                match trace_at(&state.trace, n) {
                    TraceBox::Outside => {}
                    TraceBox::Detected(entries) => {
                        for e in entries {
                            style.detection(&mut canvas, e, style.thick_px, true);
                        }
                    }
                    TraceBox::Between(e) => style.detection(&mut canvas, &e, style.thin_px, true),
                }
            }
            Mode::None => {}
        }
        if let Some(lines) = panel {
            style.panel(&mut canvas, &lines);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}
