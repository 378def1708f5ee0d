//! A request's pipeline as data: server-owned elements with typed properties around a
//! chain from pipelines/. The same [`Composition`] becomes a live pipeline in the server and
//! a gst-launch-1.0 line in `framecast explain`, so the two cannot drift apart.

use std::path::PathBuf;

use gst::prelude::*;

use super::files::Chain;

/// A property value, typed as the element declares it.
#[derive(Debug, Clone, PartialEq)]
pub enum Prop {
    U64(u64),
    I32(i32),
    Bool(bool),
    Str(String),
    Path(PathBuf),
    Caps(gst::Caps),
}

impl Prop {
    fn to_value(&self) -> gst::glib::Value {
        match self {
            Prop::U64(v) => v.to_value(),
            Prop::I32(v) => v.to_value(),
            Prop::Bool(v) => v.to_value(),
            Prop::Str(v) => v.to_value(),
            Prop::Path(v) => v.to_string_lossy().to_value(),
            Prop::Caps(v) => v.to_value(),
        }
    }

    /// As written in a gst-launch description.
    fn to_launch(&self) -> String {
        match self {
            Prop::U64(v) => v.to_string(),
            Prop::I32(v) => v.to_string(),
            Prop::Bool(v) => v.to_string(),
            Prop::Str(v) => quote_launch(v),
            Prop::Path(v) => quote_launch(&v.to_string_lossy()),
            Prop::Caps(v) => quote_launch(&v.to_string()),
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
    pub props: Vec<(&'static str, Prop)>,
}

impl ElementSpec {
    pub fn new(factory: &'static str) -> Self {
        ElementSpec {
            factory,
            props: Vec::new(),
        }
    }

    pub fn prop(mut self, name: &'static str, value: Prop) -> Self {
        self.props.push((name, value));
        self
    }

    fn make(&self) -> Result<gst::Element, gst::glib::BoolError> {
        let element = gst::ElementFactory::make(self.factory).build()?;
        for (name, value) in &self.props {
            element.set_property(name, value.to_value());
        }
        Ok(element)
    }

    fn launch_words(&self) -> Vec<String> {
        std::iter::once(self.factory.to_owned())
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
        let bin = self.chain.instantiate().map_err(|e| e.to_string())?;
        for (name, property, value) in &self.overrides {
            let element = bin
                .by_name(name)
                .ok_or_else(|| format!("no element {name} in {}", self.chain.spec.file))?;
            element.set_property(property, value.to_value());
        }
        Ok(bin.upcast())
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
        let mut elements = Vec::with_capacity(self.stages.len() + 1);
        for stage in &self.stages {
            let element = match stage {
                Stage::Element(spec) => spec
                    .make()
                    .map_err(|e| format!("cannot create {}: {e}", spec.factory))?,
                Stage::Chain(chain) => chain.make()?,
            };
            elements.push(element);
        }
        let appsink = gst_app::AppSink::builder().sync(false).build();
        elements.push(appsink.clone().upcast());
        pipeline
            .add_many(&elements)
            .map_err(|e| format!("cannot assemble the pipeline: {e}"))?;
        link_stages(&elements)?;
        Ok((pipeline, appsink))
    }

    /// gst-launch-1.0's arguments writing to `output` what the appsink would receive.
    pub fn launch_words(&self, output: &str) -> Vec<String> {
        let mut words = Vec::new();
        for stage in &self.stages {
            words.extend(match stage {
                Stage::Element(spec) => spec.launch_words(),
                Stage::Chain(chain) => chain.launch_words(),
            });
            words.push("!".to_owned());
        }
        words.push("filesink".to_owned());
        words.push(format!("location={}", quote_launch(output)));
        words
    }
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
