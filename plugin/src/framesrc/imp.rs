use std::sync::{LazyLock, Mutex, OnceLock};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::range::{BufferAction, Kind, RangeFilter};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "framesrc",
        gst::DebugColorFlags::empty(),
        Some("Exact frame range source"),
    )
});

const DEFAULT_START: u64 = 0;
const DEFAULT_STOP: u64 = u64::MAX;
const DEFAULT_AUDIO: bool = false;

#[derive(Debug, Clone)]
struct Settings {
    location: Option<String>,
    start: gst::ClockTime,
    /// `None`: to the end.
    stop: Option<gst::ClockTime>,
    audio: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            location: None,
            start: gst::ClockTime::from_nseconds(DEFAULT_START),
            stop: None,
            audio: DEFAULT_AUDIO,
        }
    }
}

/// A decoded stream and the pad of ours that shows it.
#[derive(Debug)]
struct Exposed {
    decoded: gst::Pad,
    ghost: gst::GhostPad,
}

/// Everything that lives from READY to PAUSED and back.
#[derive(Debug, Default)]
struct State {
    /// The settings as they were when the run started: properties may change in READY.
    settings: Settings,
    video: Option<Exposed>,
    audio: Option<Exposed>,
}

#[derive(Default)]
pub struct FrameSrc {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Built when first going to READY, where a missing plugin can be reported.
    filesrc: OnceLock<gst::Element>,
}

impl FrameSrc {
    /// Builds `filesrc ! decodebin` inside the bin.
    fn build(&self) -> Result<gst::Element, gst::StateChangeError> {
        let make = |factory: &str| {
            gst::ElementFactory::make(factory).build().map_err(|_| {
                gst::element_imp_error!(
                    self,
                    gst::CoreError::MissingPlugin,
                    ["Missing element {factory}"]
                );
                gst::StateChangeError
            })
        };
        let filesrc = make("filesrc")?;
        let decodebin = make("decodebin")?;
        let obj = self.obj();
        obj.add_many([&filesrc, &decodebin])
            .and_then(|_| filesrc.link(&decodebin).map_err(Into::into))
            .map_err(|err| {
                gst::element_imp_error!(self, gst::CoreError::Failed, ["{err}"]);
                gst::StateChangeError
            })?;

        // Without audio, compressed audio goes no further than the demuxer: not decoding it
        // saves the time, and the pad is left out anyway.
        decodebin.connect(
            "autoplug-continue",
            false,
            glib::clone!(
                #[weak(rename_to = this)]
                self,
                #[upgrade_or]
                Some(true.to_value()),
                move |args| {
                    let caps = args[2].get::<gst::Caps>().expect("signal signature");
                    let is_audio = caps
                        .structure(0)
                        .is_some_and(|s| s.name().starts_with("audio/"));
                    let audio = this.state.lock().unwrap().settings.audio;
                    Some((audio || !is_audio).to_value())
                }
            ),
        );
        decodebin.connect_pad_added(glib::clone!(
            #[weak(rename_to = this)]
            self,
            move |_, pad| this.pad_added(pad)
        ));
        decodebin.connect_no_more_pads(glib::clone!(
            #[weak(rename_to = this)]
            self,
            move |_| this.no_more_pads()
        ));
        Ok(filesrc)
    }

    /// Exposes the first video and (with `audio`) the first audio stream; the others are
    /// swallowed.
    fn pad_added(&self, decoded: &gst::Pad) {
        let Some(caps) = decoded.current_caps() else {
            return;
        };
        let media = caps.structure(0).map(|s| s.name().as_str());
        let mut state = self.state.lock().unwrap();
        let kind = match media {
            Some("video/x-raw") if state.video.is_none() => Kind::Video,
            Some("audio/x-raw") if state.settings.audio && state.audio.is_none() => Kind::Audio,
            _ => {
                gst::debug!(CAT, imp = self, "Not exposing {caps}");
                // Unlinked, it would return not-linked; EOS also tells the demuxer that it
                // need not read on for this stream.
                decoded.add_probe(gst::PadProbeType::BUFFER, |_, info| {
                    info.flow_res = Err(gst::FlowError::Eos);
                    gst::PadProbeReturn::Handled
                });
                return;
            }
        };
        let name = match kind {
            Kind::Video => "video",
            Kind::Audio => "audio",
        };
        let templ = self
            .obj()
            .pad_template(name)
            .expect("templates for both kinds");
        let ghost = match gst::GhostPad::builder_from_template_with_target(&templ, decoded) {
            Ok(builder) => builder.name(name).build(),
            Err(err) => {
                gst::element_imp_error!(self, gst::CoreError::Pad, ["{err}"]);
                return;
            }
        };

        let settings = &state.settings;
        // Everything decoded before our seek is from the wrong place.
        let await_seek = settings.start > gst::ClockTime::ZERO;
        let filter = Mutex::new(RangeFilter::new(
            kind,
            settings.start,
            settings.stop,
            await_seek,
        ));
        let weak_ghost = ghost.downgrade();
        decoded.add_probe(
            gst::PadProbeType::BUFFER
                | gst::PadProbeType::EVENT_DOWNSTREAM
                | gst::PadProbeType::EVENT_FLUSH,
            move |_, info| match info.data.take() {
                Some(gst::PadProbeData::Buffer(buffer)) => {
                    let action = filter.lock().unwrap().buffer(buffer);
                    match action {
                        BufferAction::Pass(buffer) => {
                            info.data = Some(gst::PadProbeData::Buffer(buffer));
                            return gst::PadProbeReturn::Ok;
                        }
                        // Consumed by the filter.
                        BufferAction::Drop => return gst::PadProbeReturn::Handled,
                        BufferAction::End => {
                            if let Some(ghost) = weak_ghost.upgrade() {
                                gst::debug!(CAT, obj = ghost, "Past the stop, sending EOS");
                                ghost.push_event(gst::event::Eos::new());
                            }
                        }
                        BufferAction::Refuse => {}
                    }
                    // Upstream stops feeding this stream; the demuxer stops reading once every
                    // stream has said so.
                    info.flow_res = Err(gst::FlowError::Eos);
                    gst::PadProbeReturn::Handled
                }
                Some(gst::PadProbeData::Event(event)) => {
                    let pass = filter.lock().unwrap().event(&event);
                    info.data = Some(gst::PadProbeData::Event(event));
                    if pass {
                        gst::PadProbeReturn::Ok
                    } else {
                        gst::PadProbeReturn::Drop
                    }
                }
                other => {
                    info.data = other;
                    gst::PadProbeReturn::Ok
                }
            },
        );

        gst::debug!(CAT, imp = self, "Exposing {caps} as {name}");
        let exposed = Exposed {
            decoded: decoded.clone(),
            ghost: ghost.clone(),
        };
        match kind {
            Kind::Video => state.video = Some(exposed),
            Kind::Audio => state.audio = Some(exposed),
        }
        // Not under our lock: adding the pad runs the application's pad-added handlers.
        drop(state);
        let obj = self.obj();
        if ghost.set_active(true).is_err() || obj.add_pad(&ghost).is_err() {
            gst::element_imp_error!(self, gst::CoreError::Pad, ["Could not add pad {name}"]);
        }
    }

    /// decodebin has exposed all its pads: ours are all there too, and the seek can go.
    fn no_more_pads(&self) {
        let state = self.state.lock().unwrap();
        let Some(exposed) = state.video.as_ref().or(state.audio.as_ref()) else {
            drop(state);
            gst::element_imp_error!(self, gst::StreamError::WrongType, ["No video stream"]);
            return;
        };
        let start = state.settings.start;
        let decoded = exposed.decoded.clone();
        drop(state);
        self.obj().no_more_pads();

        if start == gst::ClockTime::ZERO {
            return;
        }
        // This runs on a streaming thread, which the seek's flush must be able to stop.
        self.obj().call_async(move |obj| {
            gst::debug!(CAT, obj = obj, "Seeking to {start}");
            // Without a stop: the decoder would clip the frames past it, and we would not see
            // the first of them, which is what tells that the range is complete. Demuxers
            // also stop at the next keyframe at best, and some (matroskademux) drop the
            // B-frames that come after a later P-frame in decoding order.
            let seek = gst::event::Seek::new(
                1.0,
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::SeekType::Set,
                start,
                gst::SeekType::None,
                gst::ClockTime::NONE,
            );
            // The seek goes upstream through the decoder to the demuxer, which flushes and
            // restarts all its streams.
            if !decoded.send_event(seek) && decoded.is_active() {
                gst::element_error!(obj, gst::CoreError::Seek, ["Could not seek to {start}"]);
            }
        });
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FrameSrc {
    const NAME: &'static str = "GstFrameSrc";
    type Type = super::FrameSrc;
    type ParentType = gst::Bin;
}

impl ObjectImpl for FrameSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("location")
                    .nick("Location")
                    .blurb("Path of the media file")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("start")
                    .nick("Start")
                    .blurb("Stream time (ns) of the first frame to output")
                    .default_value(DEFAULT_START)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt64::builder("stop")
                    .nick("Stop")
                    .blurb(
                        "Stream time (ns) at which output ends, exclusive \
                         (18446744073709551615 = to the end)",
                    )
                    .default_value(DEFAULT_STOP)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("audio")
                    .nick("Audio")
                    .blurb("Also output the first audio stream, on the pad 'audio'")
                    .default_value(DEFAULT_AUDIO)
                    .mutable_ready()
                    .build(),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => settings.location = value.get().expect("type checked upstream"),
            "start" => {
                settings.start = gst::ClockTime::from_nseconds(value.get().expect("type checked"))
            }
            "stop" => {
                let stop: u64 = value.get().expect("type checked upstream");
                settings.stop = (stop != DEFAULT_STOP).then(|| gst::ClockTime::from_nseconds(stop));
            }
            "audio" => settings.audio = value.get().expect("type checked upstream"),
            name => unimplemented!("property {name}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock().unwrap();
        match pspec.name() {
            "location" => settings.location.to_value(),
            "start" => settings.start.nseconds().to_value(),
            "stop" => settings
                .stop
                .map_or(DEFAULT_STOP, gst::ClockTime::nseconds)
                .to_value(),
            "audio" => settings.audio.to_value(),
            name => unimplemented!("property {name}"),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        self.obj().set_element_flags(gst::ElementFlags::SOURCE);
    }
}

impl GstObjectImpl for FrameSrc {}

impl ElementImpl for FrameSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Frame range source",
                "Source/Video/Audio",
                "Decodes the frames of a media file whose stream time is in [start, stop)",
                "framecast",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            [("video", "video/x-raw"), ("audio", "audio/x-raw")]
                .into_iter()
                .map(|(name, media)| {
                    gst::PadTemplate::new(
                        name,
                        gst::PadDirection::Src,
                        gst::PadPresence::Sometimes,
                        &gst::Caps::new_empty_simple(media),
                    )
                    .expect("valid template")
                })
                .collect()
        });
        PAD_TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        match transition {
            gst::StateChange::NullToReady if self.filesrc.get().is_none() => {
                let filesrc = self.build()?;
                let _ = self.filesrc.set(filesrc);
            }
            gst::StateChange::ReadyToPaused => {
                // filesrc opens the file in this transition.
                let settings = self.settings.lock().unwrap().clone();
                if let Some(filesrc) = self.filesrc.get() {
                    filesrc.set_property("location", settings.location.as_deref());
                }
                *self.state.lock().unwrap() = State {
                    settings,
                    ..State::default()
                };
            }
            _ => {}
        }

        let success = self.parent_change_state(transition)?;

        match transition {
            gst::StateChange::PausedToReady => {
                // decodebin has removed its pads, ours lost their targets.
                let mut state = self.state.lock().unwrap();
                let exposed = [state.video.take(), state.audio.take()];
                drop(state);
                let obj = self.obj();
                for exposed in exposed.into_iter().flatten() {
                    let _ = obj.remove_pad(&exposed.ghost);
                }
            }
            _ => {}
        }
        Ok(success)
    }
}

impl BinImpl for FrameSrc {}
