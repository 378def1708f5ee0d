//! A request's pipeline as data: server-owned elements with typed properties around a
//! chain from pipelines/. The same [`Composition`] becomes a live pipeline in the server and
//! a gst-launch-1.0 line in `framecast explain`, so the two cannot drift apart.

use std::path::PathBuf;
use std::sync::Arc;

use gst::prelude::*;
use gstframecast::detections::DetectionSource;

use super::files::{Chain, MUXER_NAME};

/// A property value, typed as the element declares it.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    U64(u64),
    U32(u32),
    I64(i64),
    I32(i32),
    Bool(bool),
    Str(String),
    Path(PathBuf),
    Caps(gst::Caps),
    /// An enum property, by its nick.
    Enum(&'static str),
    /// `detectionoverlay`'s detections, handed over in-process (the server's catalog, which
    /// may be PostgreSQL): set with `DetectionOverlay::set_source`. A gst-launch line cannot
    /// carry it; `framecast explain` writes the detections to a file instead.
    Detections(SourceHandle),
}

/// A [`DetectionSource`] as a property value.
#[derive(Clone)]
pub struct SourceHandle(pub Arc<dyn DetectionSource>);

impl std::fmt::Debug for SourceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SourceHandle(in-process detections)")
    }
}

impl PartialEq for SourceHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Prop {
    /// Sets property `name` of `element` to this value.
    fn apply(&self, element: &gst::Element, name: &str) {
        let value = match self {
            Prop::U64(v) => v.to_value(),
            Prop::U32(v) => v.to_value(),
            Prop::I64(v) => v.to_value(),
            Prop::I32(v) => v.to_value(),
            Prop::Bool(v) => v.to_value(),
            Prop::Str(v) => v.to_value(),
            Prop::Path(v) => v.to_string_lossy().to_value(),
            Prop::Caps(v) => v.to_value(),
            // The enum's type is the element's: set it by nick.
            Prop::Enum(nick) => return element.set_property_from_str(name, nick),
            Prop::Detections(source) => {
                element
                    .downcast_ref::<gstframecast::DetectionOverlay>()
                    .expect("detections are handed to a detectionoverlay")
                    .set_source(source.0.clone());
                return;
            }
        };
        element.set_property(name, value);
    }

    /// As written in a gst-launch description.
    fn to_launch(&self) -> String {
        match self {
            Prop::U64(v) => v.to_string(),
            Prop::U32(v) => v.to_string(),
            Prop::I64(v) => v.to_string(),
            Prop::I32(v) => v.to_string(),
            Prop::Bool(v) => v.to_string(),
            Prop::Str(v) => quote_launch(v),
            Prop::Path(v) => quote_launch(&v.to_string_lossy()),
            Prop::Caps(v) => quote_launch(&v.to_string()),
            Prop::Enum(nick) => nick.to_string(),
            // Logged lines show where the detections came from; explain's lines name a file.
            Prop::Detections(_) => quote_launch("<the catalog, in-process>"),
        }
    }
}

/// gst-launch's quoted string: backslash escapes for `"` and `\`.
fn quote_launch(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

#[derive(Debug, Clone)]
pub struct ElementSpec {
    pub factory: &'static str,
    /// The element's name, needed when later stages refer to its pads (`src.audio`).
    pub name: Option<&'static str>,
    pub props: Vec<(&'static str, Prop)>,
}

impl ElementSpec {
    pub fn new(factory: &'static str) -> Self {
        ElementSpec {
            factory,
            name: None,
            props: Vec::new(),
        }
    }

    pub fn named(mut self, name: &'static str) -> Self {
        self.name = Some(name);
        self
    }

    pub fn prop(mut self, name: &'static str, value: Prop) -> Self {
        self.props.push((name, value));
        self
    }

    fn make(&self) -> Result<gst::Element, gst::glib::BoolError> {
        let mut builder = gst::ElementFactory::make(self.factory);
        if let Some(name) = self.name {
            builder = builder.name(name);
        }
        let element = builder.build()?;
        for (name, value) in &self.props {
            value.apply(&element, name);
        }
        Ok(element)
    }

    fn launch_words(&self) -> Vec<String> {
        std::iter::once(self.factory.to_owned())
            .chain(self.name.map(|name| format!("name={name}")))
            .chain(
                self.props
                    .iter()
                    .map(|(name, value)| format!("{name}={}", value.to_launch())),
            )
            .collect()
    }
}

/// A chain from pipelines/ with the per-request properties the server sets on it.
#[derive(Debug, Clone)]
pub struct ChainUse {
    pub chain: Chain,
    /// `(element name, property, value)`; names and properties were validated at load.
    pub overrides: Vec<(&'static str, &'static str, Prop)>,
}

impl ChainUse {
    fn make(&self) -> Result<gst::Element, String> {
        self.make_bin().map(|bin| bin.upcast())
    }

    fn make_bin(&self) -> Result<gst::Bin, String> {
        let bin = self.chain.instantiate().map_err(|e| e.to_string())?;
        for (name, property, value) in &self.overrides {
            let element = bin
                .by_name(name)
                .ok_or_else(|| format!("no element {name} in {}", self.chain.spec.file))?;
            value.apply(&element, property);
        }
        Ok(bin)
    }

    /// The chain as one gst-launch description, overrides applied: what an element that
    /// builds the chain itself (`smartcut`'s `encoder`) is given.
    pub fn description(&self) -> String {
        self.launch_words().join(" ")
    }

    /// The description's words with each override appended to its element's properties (a
    /// later assignment wins in gst-launch), so the line does what the live pipeline does.
    fn launch_words(&self) -> Vec<String> {
        let mut words = launch_words(&self.chain.description);
        for (name, property, value) in &self.overrides {
            let named = format!("name={name}");
            let at = words
                .iter()
                .position(|w| *w == named)
                .map(|i| i + words[i..].iter().take_while(|w| *w != "!").count())
                .unwrap_or(words.len());
            words.insert(at, format!("{property}={}", value.to_launch()));
        }
        words
    }
}

/// Splits a description into gst-launch-1.0 arguments: at whitespace and around `!`, outside
/// double quotes. gst-launch-1.0 escapes the spaces inside each argument, so a description
/// must reach it as separate words, not as one string.
fn launch_words(description: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in description.chars() {
        match c {
            _ if escaped => {
                escaped = false;
                word.push(c);
            }
            '\\' if quoted => {
                escaped = true;
                word.push(c);
            }
            '"' => {
                quoted = !quoted;
                word.push(c);
            }
            c if !quoted && (c.is_whitespace() || c == '!') => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                if c == '!' {
                    words.push("!".to_owned());
                }
            }
            c => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// One link in the line.
#[derive(Debug, Clone)]
pub enum Stage {
    Element(ElementSpec),
    Chain(ChainUse),
    /// Branches from the previous stage's named pads into a muxer chain, whose output
    /// continues the line. The previous stage must be a named [`ElementSpec`].
    Mux(Muxing),
}

/// `src.video ! <branch> ! mux.  src.audio ! <branch> ! mux.  <muxer chain>`
#[derive(Debug, Clone)]
pub struct Muxing {
    /// In the order the muxer's request pads are taken.
    pub branches: Vec<Branch>,
    /// A [`super::files::Shape::Muxer`] chain.
    pub mux: ChainUse,
}

/// One input of a muxer: the source's pad `pad` through `stages`.
#[derive(Debug, Clone)]
pub struct Branch {
    pub pad: SourcePad,
    pub stages: Vec<Stage>,
}

/// Which of the source's pads feeds a branch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourcePad {
    /// The pad of this name (framesrc's `video`, `audio`): `src.video` in gst-launch.
    Named(&'static str),
    /// The first pad that can link to the branch (parsebin's `src_%u` are numbered in no
    /// fixed order): `src.` in gst-launch, whose delayed linking does the same.
    Accepted,
}

impl std::fmt::Display for SourcePad {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourcePad::Named(name) => f.write_str(name),
            SourcePad::Accepted => f.write_str("first accepted"),
        }
    }
}

/// source ! stages... ! sink, as data.
#[derive(Debug, Clone)]
pub struct Composition {
    pub stages: Vec<Stage>,
}

impl Composition {
    /// A live pipeline ending in an appsink, returned for the caller to configure.
    pub fn build(&self) -> Result<(gst::Pipeline, gst_app::AppSink), String> {
        let pipeline = gst::Pipeline::new();
        // The main line; `false` marks an element that is not linked to the one before it
        // (a muxer, fed by branches instead).
        let mut line: Vec<(gst::Element, bool)> = Vec::with_capacity(self.stages.len() + 1);
        for stage in &self.stages {
            match stage {
                Stage::Mux(muxing) => {
                    let (source, _) = line
                        .last()
                        .cloned()
                        .ok_or("a muxing stage needs a source before it")?;
                    let mux = build_muxing(&pipeline, &source, muxing)?;
                    line.push((mux, false));
                }
                stage => line.push((make_stage(stage)?, true)),
            }
        }
        let appsink = gst_app::AppSink::builder().sync(false).build();
        line.push((appsink.clone().upcast(), true));
        let elements: Vec<gst::Element> = line.iter().map(|(e, _)| e.clone()).collect();
        for element in &elements {
            if element.parent().is_none() {
                pipeline
                    .add(element)
                    .map_err(|e| format!("cannot assemble the pipeline: {e}"))?;
            }
        }
        for (pair, linked) in elements
            .windows(2)
            .zip(line.iter().skip(1).map(|(_, l)| *l))
        {
            if linked {
                link_stages(pair)?;
            }
        }
        Ok((pipeline, appsink))
    }

    /// gst-launch-1.0's arguments writing to `output` what the appsink would receive.
    pub fn launch_words(&self, output: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut previous_name = None;
        for stage in &self.stages {
            match stage {
                Stage::Element(spec) => {
                    words.extend(spec.launch_words());
                    previous_name = spec.name;
                }
                Stage::Chain(chain) => {
                    words.extend(chain.launch_words());
                    previous_name = None;
                }
                Stage::Mux(muxing) => {
                    // The branches start from the source's pads, not from a link.
                    words.pop();
                    let source = previous_name.expect("a muxing stage follows a named element");
                    for branch in &muxing.branches {
                        words.push(match branch.pad {
                            SourcePad::Named(pad) => format!("{source}.{pad}"),
                            SourcePad::Accepted => format!("{source}."),
                        });
                        for stage in &branch.stages {
                            words.push("!".to_owned());
                            words.extend(stage_words(stage));
                        }
                        words.push("!".to_owned());
                        words.push(format!("{MUXER_NAME}."));
                    }
                    words.extend(muxing.mux.launch_words());
                    previous_name = None;
                }
            }
            words.push("!".to_owned());
        }
        if self.writes_to_pipe() {
            // To stdout, which launch::launch_line pipes into `output`.
            words.push("fdsink".to_owned());
            words.push("fd=1".to_owned());
        } else {
            words.push("filesink".to_owned());
            words.push(format!("location={}", quote_launch(output)));
        }
        words
    }

    /// Whether gst-launch must write to a pipe, not a file, to give the server's bytes: a
    /// muxer that seeks back to rewrite its header when it can (see `ChainSpec::seeks_back`).
    pub fn writes_to_pipe(&self) -> bool {
        self.stages.iter().any(|stage| match stage {
            Stage::Mux(muxing) => muxing.mux.chain.spec.seeks_back,
            _ => false,
        })
    }
}

fn stage_words(stage: &Stage) -> Vec<String> {
    match stage {
        Stage::Element(spec) => spec.launch_words(),
        Stage::Chain(chain) => chain.launch_words(),
        Stage::Mux(_) => panic!("muxing stages do not nest"),
    }
}

fn make_stage(stage: &Stage) -> Result<gst::Element, String> {
    match stage {
        Stage::Element(spec) => spec
            .make()
            .map_err(|e| format!("cannot create {}: {e}", spec.factory)),
        Stage::Chain(chain) => chain.make(),
        Stage::Mux(_) => Err("muxing stages do not nest".into()),
    }
}

/// Adds the muxer chain and every branch to `pipeline`: each branch's end takes a request
/// pad of the muxer (in branch order, as gst-launch's `! mux.` does), each branch's start
/// is linked when `source` exposes its pad. A pad the source never exposes gets EOS, so the
/// muxer does not wait for it. Returns the muxer chain's bin.
fn build_muxing(
    pipeline: &gst::Pipeline,
    source: &gst::Element,
    muxing: &Muxing,
) -> Result<gst::Element, String> {
    let bin = muxing.mux.make_bin()?;
    let mux = bin
        .by_name(MUXER_NAME)
        .ok_or_else(|| format!("no element {MUXER_NAME} in {}", muxing.mux.chain.spec.file))?;
    pipeline
        .add(&bin)
        .map_err(|e| format!("cannot assemble the pipeline: {e}"))?;
    let mut starts = Vec::new();
    for branch in &muxing.branches {
        let elements = branch
            .stages
            .iter()
            .map(make_stage)
            .collect::<Result<Vec<_>, _>>()?;
        let (Some(first), Some(last)) = (elements.first(), elements.last()) else {
            return Err(format!("the {} branch is empty", branch.pad));
        };
        pipeline
            .add_many(&elements)
            .map_err(|e| format!("cannot assemble the pipeline: {e}"))?;
        link_stages(&elements)?;
        let src = last
            .static_pad("src")
            .ok_or_else(|| format!("the {} branch has no src pad", branch.pad))?;
        let request = mux
            .compatible_pad(&src, None)
            .ok_or_else(|| format!("the muxer takes no {} input", branch.pad))?;
        let ghost = gst::GhostPad::with_target(&request)
            .map_err(|e| format!("cannot expose the muxer's pad: {e}"))?;
        bin.add_pad(&ghost)
            .map_err(|e| format!("cannot expose the muxer's pad: {e}"))?;
        src.link(&ghost)
            .map_err(|e| format!("cannot link the {} branch to the muxer: {e}", branch.pad))?;
        starts.push((branch.pad, first.downgrade()));
    }
    source.connect_pad_added({
        let starts = starts.clone();
        move |_, pad| {
            let sinks = starts.iter().filter_map(|(source_pad, to)| {
                let sink = to.upgrade()?.static_pad("sink")?;
                let takes = match source_pad {
                    SourcePad::Named(name) => pad.name() == *name,
                    SourcePad::Accepted => !sink.is_linked() && pad.can_link(&sink),
                };
                takes.then_some(sink)
            });
            if let Some(sink) = sinks.into_iter().next() {
                if let Err(e) = pad.link(&sink) {
                    gst::warning!(gst::CAT_DEFAULT, "cannot link pad {}: {e:?}", pad.name());
                }
            }
        }
    });
    source.connect_no_more_pads(move |_| {
        for (name, to) in &starts {
            if let Some(sink) = to.upgrade().and_then(|to| to.static_pad("sink")) {
                if !sink.is_linked() {
                    gst::debug!(gst::CAT_DEFAULT, "no {name} pad: ending that branch");
                    sink.send_event(gst::event::Eos::new());
                }
            }
        }
    });
    Ok(bin.upcast())
}

/// Links each element to the next; the first may expose its source pad only later
/// (framesrc's `video` is a sometimes pad), which gst's delayed linking handles.
fn link_stages(elements: &[gst::Element]) -> Result<(), String> {
    for pair in elements.windows(2) {
        let (from, to) = (&pair[0], &pair[1]);
        if from.static_pad("src").is_some() || from.pad_template("src").is_some() {
            from.link(to)
                .map_err(|e| format!("cannot link {} to {}: {e}", from.name(), to.name()))?;
        } else {
            link_when_video_pad_appears(from, to);
        }
    }
    Ok(())
}

/// framesrc names its pads `video`/`audio`; link `video` once it exists.
fn link_when_video_pad_appears(from: &gst::Element, to: &gst::Element) {
    if from.static_pad("video").is_some() {
        from.link_pads(Some("video"), to, None)
            .expect("video pad links to the next stage");
        return;
    }
    let to = to.downgrade();
    from.connect_pad_added(move |_, pad| {
        if pad.name() != "video" {
            return;
        }
        if let Some(to) = to.upgrade() {
            let sink = to.static_pad("sink").expect("next stage has a sink pad");
            if let Err(e) = pad.link(&sink) {
                gst::warning!(gst::CAT_DEFAULT, "cannot link video pad: {e:?}");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_outside_quotes_and_around_bangs() {
        assert_eq!(
            launch_words("a  x=\"1 ! 2\"!b ! c y=\"q\\\"r\""),
            ["a", "x=\"1 ! 2\"", "!", "b", "!", "c", "y=\"q\\\"r\""]
        );
    }

    #[test]
    fn override_lands_at_the_end_of_its_element() {
        let chain = |description: &str| ChainUse {
            chain: super::super::files::Chain {
                spec: super::super::files::THUMBNAIL,
                description: description.to_owned(),
                digest: String::new(),
            },
            overrides: vec![("encoder", "quality", Prop::I32(5))],
        };
        assert_eq!(
            chain("videoconvert ! jpegenc name=encoder quality=90 ! fakesink")
                .launch_words()
                .join(" "),
            "videoconvert ! jpegenc name=encoder quality=90 quality=5 ! fakesink"
        );
        assert_eq!(
            chain("jpegenc quality=90 name=encoder")
                .launch_words()
                .join(" "),
            "jpegenc quality=90 name=encoder quality=5"
        );
    }

    #[test]
    fn muxing_branches_start_at_the_named_source_pads() {
        let chain = |spec, description: &str| ChainUse {
            chain: super::super::files::Chain {
                spec,
                description: description.to_owned(),
                digest: String::new(),
            },
            overrides: Vec::new(),
        };
        let composition = Composition {
            stages: vec![
                Stage::Element(
                    ElementSpec::new("framesrc")
                        .named("src")
                        .prop("audio", Prop::Bool(true)),
                ),
                Stage::Mux(Muxing {
                    branches: vec![
                        Branch {
                            pad: SourcePad::Named("video"),
                            stages: vec![Stage::Chain(chain(
                                super::super::files::CLIP_VIDEO,
                                "videoconvert ! x264enc",
                            ))],
                        },
                        Branch {
                            pad: SourcePad::Named("audio"),
                            stages: vec![Stage::Element(ElementSpec::new("audioconvert"))],
                        },
                    ],
                    mux: chain(super::super::files::CLIP_MUX, "mpegtsmux name=mux"),
                }),
            ],
        };
        assert_eq!(
            composition.launch_words("o.ts").join(" "),
            "framesrc name=src audio=true src.video ! videoconvert ! x264enc ! mux. \
             src.audio ! audioconvert ! mux. mpegtsmux name=mux ! filesink location=\"o.ts\""
        );
    }

    #[test]
    fn launch_values_are_quoted() {
        let spec = ElementSpec::new("filesrc")
            .prop("location", Prop::Path(PathBuf::from("/v/a \"b\" ! c.mp4")))
            .prop("num-buffers", Prop::I32(3));
        assert_eq!(
            spec.launch_words(),
            [
                r#"filesrc"#,
                r#"location="/v/a \"b\" ! c.mp4""#,
                "num-buffers=3"
            ]
        );
    }
}
