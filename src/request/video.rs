//! `/video` and `/video/bbox`:
//! - `/video/bbox`: the video from `start` with every detection drawn;
//! - `/video`: the original file, served with ranges; with mode=debug as `/video/bbox` with
//!   the debug panel; with audio=off the video alone from `start`, copied when it can be.

use super::query::{Audio, Mode, QueryParams, StreamParams};
use super::stream::{self, Coding, Detections, Overlay, StreamJob, DETECTIONS_CACHE_CONTROL};
use super::{Job, PlanError};
use crate::catalog::FileRecord;
use crate::media::codec::{self, ByteStream};

/// `/video/bbox` (`debug` false unless mode=debug) and `/video?mode=debug` (`debug` true):
/// the video from `start` to its end with every detection drawn.
pub fn plan_bbox(
    file: FileRecord,
    query: &QueryParams,
    debug: bool,
) -> Result<StreamJob, PlanError> {
    let params = StreamParams::parse(query)?;
    let last = stream::last_frame(&file);
    Ok(StreamJob {
        first: stream::start_frame(query, 0, last)?,
        last,
        audio: stream::audio(&params, &file),
        overlay: Some(Overlay {
            detections: Detections::All,
            debug: debug || params.mode == Mode::Debug,
            title: None,
        }),
        coding: Coding::Reencode,
        cache_control: DETECTIONS_CACHE_CONTROL,
        source: file.location.stored(),
        file,
    })
}

/// `/video`.
pub fn plan(file: FileRecord, query: &QueryParams) -> Result<Job, PlanError> {
    let params = StreamParams::parse(query)?;
    match (params.mode, params.audio) {
        (Mode::Debug, _) => plan_bbox(file, query, true).map(Job::Stream),
        (Mode::Normal, Audio::Off) => {
            let last = stream::last_frame(&file);
            let first = stream::start_frame(query, 0, last)?;
            let coding = match copyable(&file) {
                Some(stream) if first == 0 => Coding::Copy(stream),
                _ => Coding::Reencode,
            };
            Ok(Job::Stream(StreamJob {
                first,
                last,
                audio: false,
                overlay: None,
                coding,
                cache_control: DETECTIONS_CACHE_CONTROL,
                source: file.location.stored(),
                file,
            }))
        }
        (Mode::Normal, Audio::On) if query.has("start") => Err(PlanError::bad_parameter(
            "start applies to re-encoded streams (mode=debug or audio=off); the original \
             file is served as is: seek in it with a Range header",
        )),
        (Mode::Normal, Audio::On) => Ok(Job::Original(file)),
    }
}

/// How the file's video goes into MPEG-TS as it is, if it does: a codec MPEG-TS carries,
/// starting at a keyframe. (An MP4 cut with an edit list between keyframes starts with
/// frames that only show after decoding a hidden keyframe, which the muxer drops: those
/// are re-encoded.)
fn copyable(file: &FileRecord) -> Option<ByteStream> {
    codec::byte_stream(&file.media.video_codec).filter(|_| file.media.frame_index.is_keyframe(0))
}
