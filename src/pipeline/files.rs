//! Pipeline description files: the middle of each endpoint's pipeline, in gst-launch syntax,
//! editable by ops without a rebuild. Loaded and validated once at startup.

use std::path::{Path, PathBuf};

use gst::prelude::*;
use sha2::{Digest, Sha256};

/// One endpoint's chain, and what the server expects to find in it.
#[derive(Debug, Clone, Copy)]
pub struct ChainSpec {
    /// File name under the pipelines dir.
    pub file: &'static str,
    /// `(element name, property)` pairs the server sets per request.
    pub overridable: &'static [(&'static str, &'static str)],
    pub shape: Shape,
    /// The muxer rewrites its output's header at the end when downstream is seekable
    /// (mp4mux: an index and durations); the server's appsink is not, so gst-launch must
    /// write through a pipe to give the same bytes.
    pub seeks_back: bool,
}

/// How a chain connects to the rest of the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One unlinked sink pad and one unlinked src pad.
    Filter,
    /// An element named [`MUXER_NAME`] with request sink pads (the server links its inputs
    /// there) and one unlinked src pad.
    Muxer,
}

/// The name the muxer of a [`Shape::Muxer`] chain must have.
pub const MUXER_NAME: &str = "mux";

pub const THUMBNAIL: ChainSpec = ChainSpec {
    file: "thumbnail.gst",
    overridable: &[("encoder", "quality")],
    shape: Shape::Filter,
    seeks_back: false,
};

pub const CLIP_VIDEO: ChainSpec = ChainSpec {
    file: "clip-video.gst",
    // bframes: 0 for fragmented MP4 and smart cuts' edges, which also set aud (see
    // pipeline::stream).
    overridable: &[("videoenc", "bframes"), ("videoenc", "aud")],
    shape: Shape::Filter,
    seeks_back: false,
};

pub const CLIP_AUDIO: ChainSpec = ChainSpec {
    file: "clip-audio.gst",
    overridable: &[],
    shape: Shape::Filter,
    seeks_back: false,
};

pub const CLIP_MUX: ChainSpec = ChainSpec {
    file: "clip-mux.gst",
    overridable: &[],
    shape: Shape::Muxer,
    seeks_back: false,
};

/// The muxer of `format=mp4` streams: fragmented MP4 for browsers.
pub const CLIP_MUX_MP4: ChainSpec = ChainSpec {
    file: "clip-mux-mp4.gst",
    overridable: &[],
    shape: Shape::Muxer,
    seeks_back: true,
};

/// Every chain the server uses, checked at startup and by `framecast check`.
pub const ALL: &[ChainSpec] = &[THUMBNAIL, CLIP_VIDEO, CLIP_AUDIO, CLIP_MUX, CLIP_MUX_MP4];

/// A validated chain.
#[derive(Debug, Clone)]
pub struct Chain {
    pub spec: ChainSpec,
    /// The description with comments removed, on one line.
    pub description: String,
    /// Hex SHA-256 of the file's bytes: part of cache keys and ETags, so editing the file
    /// invalidates what it produced.
    pub digest: String,
}

impl Chain {
    /// A fresh bin of this chain, with ghost `sink` and `src` pads.
    pub fn instantiate(&self) -> Result<gst::Bin, gst::glib::Error> {
        gst::parse::bin_from_description_full(
            &self.description,
            true,
            None,
            gst::ParseFlags::FATAL_ERRORS,
        )
        .map(|element| {
            element
                .downcast::<gst::Bin>()
                .expect("bin_from_description makes a bin")
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}:{line}: {message}")]
pub struct PipelineFileError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

/// All chains, loaded from the pipelines dir.
#[derive(Debug, Clone)]
pub struct PipelineFiles {
    chains: Vec<Chain>,
}

impl PipelineFiles {
    /// Loads and validates every chain in [`ALL`]; the first problem stops loading.
    pub fn load(dir: &Path) -> Result<Self, PipelineFileError> {
        let chains = ALL
            .iter()
            .map(|spec| load_chain(&dir.join(spec.file), *spec))
            .collect::<Result<_, _>>()?;
        Ok(PipelineFiles { chains })
    }

    pub fn get(&self, spec: ChainSpec) -> &Chain {
        self.chains
            .iter()
            .find(|chain| chain.spec.file == spec.file)
            .expect("every ChainSpec in ALL is loaded")
    }
}

fn load_chain(path: &Path, spec: ChainSpec) -> Result<Chain, PipelineFileError> {
    let error = |line: usize, message: String| PipelineFileError {
        path: path.to_owned(),
        line,
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(0, format!("cannot read: {e}")))?;
    let description = strip_comments(&text);
    if description.is_empty() {
        return Err(error(1, "no pipeline description in the file".into()));
    }
    let chain = Chain {
        spec,
        description,
        digest: hex::encode(Sha256::digest(text.as_bytes())),
    };
    let bin = chain
        .instantiate()
        .map_err(|e| error(line_of_error(&text, e.message()), e.to_string()))?;
    match spec.shape {
        Shape::Filter => {
            for pad in ["sink", "src"] {
                if bin.static_pad(pad).is_none() {
                    return Err(error(
                        first_description_line(&text),
                        format!(
                            "the chain must have one unlinked {pad} pad (one input and one output)"
                        ),
                    ));
                }
            }
        }
        Shape::Muxer => {
            let has_request_sinks = bin.by_name(MUXER_NAME).is_some_and(|mux| {
                mux.pad_template_list().iter().any(|t| {
                    t.direction() == gst::PadDirection::Sink
                        && t.presence() == gst::PadPresence::Request
                })
            });
            if !has_request_sinks {
                return Err(error(
                    first_description_line(&text),
                    format!(
                        "no muxer named `{MUXER_NAME}`: the chain must start with a muxer \
                         (request sink pads) with name={MUXER_NAME}"
                    ),
                ));
            }
            if bin.static_pad("sink").is_some() || bin.static_pad("src").is_none() {
                return Err(error(
                    first_description_line(&text),
                    "the chain must have one unlinked src pad and no other input than the muxer"
                        .into(),
                ));
            }
        }
    }
    for (name, property) in spec.overridable {
        let Some(element) = bin.by_name(name) else {
            return Err(error(
                first_description_line(&text),
                format!("no element named `{name}`: add name={name} to the element whose `{property}` requests set"),
            ));
        };
        if element.find_property(property).is_none() {
            return Err(error(
                line_containing(&text, &format!("name={name}")).unwrap_or(1),
                format!("element `{name}` has no property `{property}`"),
            ));
        }
    }
    Ok(chain)
}

/// The description without `#` comment lines, joined into one line.
fn strip_comments(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

fn first_description_line(text: &str) -> usize {
    text.lines()
        .position(|line| !line.trim().is_empty() && !line.trim().starts_with('#'))
        .map_or(1, |i| i + 1)
}

fn line_containing(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|line| !line.trim_start().starts_with('#') && line.contains(needle))
        .map(|i| i + 1)
}

/// GStreamer's parse errors have no position, but usually quote what they choke on
/// (`no element "jpegencc"`, `no property "qualty" in element "jpegenc"`): find that line.
fn line_of_error(text: &str, message: &str) -> usize {
    message
        .split('"')
        .skip(1)
        .step_by(2)
        .find_map(|quoted| line_containing(text, quoted))
        .unwrap_or_else(|| first_description_line(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Chain, PipelineFileError> {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("thumbnail.gst");
        std::fs::write(&path, text).unwrap();
        load_chain(&path, THUMBNAIL)
    }

    #[test]
    fn shipped_files_are_valid() {
        // With framecast's elements, as the server registers them (thumbnail.gst uses
        // edgepad).
        crate::pipeline::init().unwrap();
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines"));
        let files = PipelineFiles::load(dir).unwrap();
        assert!(files
            .get(THUMBNAIL)
            .description
            .contains("jpegenc name=encoder"));
        assert!(files.get(CLIP_MUX).description.contains("name=mux"));
        assert!(files
            .get(CLIP_MUX_MP4)
            .description
            .contains("mp4mux name=mux"));
    }

    #[test]
    fn a_muxer_chain_needs_a_named_muxer() {
        gst::init().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("clip-mux.gst");
        std::fs::write(&path, "# muxer\nmpegtsmux\n").unwrap();
        let e = load_chain(&path, CLIP_MUX).unwrap_err();
        assert!(e.to_string().contains("name=mux"), "{e}");
        assert_eq!(e.line, 2);
        std::fs::write(&path, "videoconvert name=mux\n").unwrap();
        assert!(load_chain(&path, CLIP_MUX).is_err());
        std::fs::write(&path, "mpegtsmux name=mux ! queue\n").unwrap();
        load_chain(&path, CLIP_MUX).unwrap();
    }

    #[test]
    fn errors_name_the_line() {
        let e = load_text("# comment\nvideoconvert\n ! jpegencc name=encoder\n").unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        assert!(e.to_string().contains("jpegencc"), "{e}");

        let e = load_text("videoconvert ! jpegenc name=encoder qualty=3\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");

        let e = load_text("# no encoder name\nvideoconvert ! jpegenc\n").unwrap_err();
        assert!(e.to_string().contains("name=encoder"), "{e}");
        assert_eq!(e.line, 2);

        let e = load_text("videoconvert ! videoscale name=encoder\n").unwrap_err();
        assert!(e.to_string().contains("no property `quality`"), "{e}");

        let e = load_text("# only comments\n").unwrap_err();
        assert!(e.to_string().contains("no pipeline description"), "{e}");
    }
}
