//! The `detectionoverlay` element of a job's pipeline, and where it reads detections.

use std::path::PathBuf;

use super::compose::SourceHandle;
use super::{ElementSpec, Prop};
use crate::catalog::FileRecord;
use crate::request::{Detections, Overlay};

/// Where an overlay reads its detections.
#[derive(Debug, Clone)]
pub enum DetectionsFrom {
    /// Handed over in-process: the server's catalog, whichever it is.
    Source(SourceHandle),
    /// A detections file (JSON lines): `framecast explain` writes the span's detections to
    /// one, so that its gst-launch line reproduces the response.
    File(PathBuf),
}

/// How detections are drawn for a request: their source and the label font.
#[derive(Debug, Clone)]
pub struct Drawing {
    pub detections: DetectionsFrom,
    /// `label_font` from the settings: Pango families for every label; `None` keeps the 5×7
    /// font for ASCII.
    pub label_font: Option<String>,
}

impl Drawing {
    /// `detectionoverlay` for `overlay` of `file`, numbering buffers from `first` (framesrc
    /// delivers exactly the frames of its range).
    pub fn element(&self, file: &FileRecord, first: u32, overlay: &Overlay) -> ElementSpec {
        let mut element = ElementSpec::new("detectionoverlay");
        if overlay.detections != Detections::None {
            element = match &self.detections {
                DetectionsFrom::Source(source) => {
                    element.prop("detections-file", Prop::Detections(source.clone()))
                }
                DetectionsFrom::File(path) => {
                    element.prop("detections-file", Prop::Path(path.clone()))
                }
            };
        }
        element = element
            .prop("file-uuid", Prop::Str(file.uuid.to_string()))
            .prop("first-frame", Prop::U64(first.into()));
        element = match overlay.detections {
            Detections::All => element,
            Detections::Trace(id) => element
                .prop("mode", Prop::Enum("trace"))
                .prop("trace-id", Prop::I64(id)),
            Detections::None => element.prop("mode", Prop::Enum("none")),
        };
        if overlay.debug {
            element = element.prop("debug", Prop::Bool(true));
        }
        if let Some(title) = &overlay.title {
            element = element.prop("title", Prop::Str(title.clone()));
        }
        if let Some(font) = &self.label_font {
            element = element.prop("label-font", Prop::Str(font.clone()));
        }
        element
    }
}
