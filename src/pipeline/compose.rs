//! A request's pipeline as data: server-owned elements with typed properties around a
//! chain from pipelines/. The same [`Composition`] becomes a live pipeline in the server and
//! a gst-launch-1.0 line in `framecast explain`, so the two cannot drift apart.

use std::fmt::Write as _;
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

    fn to_launch(&self) -> String {
        let mut text = self.factory.to_owned();
        for (name, value) in &self.props {
            write!(text, " {name}={}", value.to_launch()).expect("write to String");
        }
        text
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

    /// The description with each override appended to its element's properties (a later
    /// assignment wins in gst-launch), so the line does what the live pipeline does.
    fn to_launch(&self) -> String {
        let mut text = self.chain.description.clone();
        for (name, property, value) in &self.overrides {
            let assignment = format!(" {property}={}", value.to_launch());
            let at = end_of_element(&text, name).unwrap_or(text.len());
            text.insert_str(at, &assignment);
        }
        text
    }
}

/// Byte offset just past the last property of the element named `name` (before the next
/// unquoted `!`, or the end).
fn end_of_element(text: &str, name: &str) -> Option<usize> {
    let needle = format!("name={name}");
    let start = text
        .match_indices(&needle)
        .map(|(i, _)| i + needle.len())
        .find(|&end| {
            text[end..]
                .chars()
                .next()
                .is_none_or(|c| c.is_whitespace() || c == '!')
        })?;
    let mut quoted = false;
    let mut escaped = false;
    for (offset, c) in text[start..].char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            '!' if !quoted => return Some(start + text[start..start + offset].trim_end().len()),
            _ => {}
        }
    }
    Some(text.trim_end().len())
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

    /// The gst-launch-1.0 description writing to `output` what the appsink would receive.
    pub fn to_launch(&self, output: &str) -> String {
        let mut parts: Vec<String> = self
            .stages
            .iter()
            .map(|stage| match stage {
                Stage::Element(spec) => spec.to_launch(),
                Stage::Chain(chain) => chain.to_launch(),
            })
            .collect();
        parts.push(format!("filesink location={}", quote_launch(output)));
        parts.join(" ! ")
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
    fn override_lands_at_the_end_of_its_element() {
        let text = "videoconvert ! jpegenc name=encoder quality=90 ! fakesink";
        let at = end_of_element(text, "encoder").unwrap();
        assert_eq!(
            &text[..at],
            "videoconvert ! jpegenc name=encoder quality=90"
        );
        let last = "videoconvert ! jpegenc quality=90 name=encoder";
        assert_eq!(end_of_element(last, "encoder"), Some(last.len()));
        let quoted = "x name=encoder caption=\"a ! b\" ! y";
        assert_eq!(
            &quoted[..end_of_element(quoted, "encoder").unwrap()],
            "x name=encoder caption=\"a ! b\""
        );
        // `name=encoder2` is another element.
        assert_eq!(end_of_element("a name=encoder2 ! b", "encoder"), None);
    }

    #[test]
    fn launch_values_are_quoted() {
        let spec = ElementSpec::new("filesrc")
            .prop("location", Prop::Path(PathBuf::from("/v/a \"b\" ! c.mp4")))
            .prop("num-buffers", Prop::I32(3));
        assert_eq!(
            spec.to_launch(),
            r#"filesrc location="/v/a \"b\" ! c.mp4" num-buffers=3"#
        );
    }
}
