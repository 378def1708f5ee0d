//! `/video` and `/video/bbox`:
//! - `/video/bbox`: the video from `start` with every detection drawn;
//! - `/video`: the original file, served with ranges; with mode=debug as `/video/bbox` with
//!   the debug panel; with audio=off the video alone from `start`, copied when it can be;
//!   with format=mp4 re-encoded into fragmented MP4 (for browsers) from `start`.

use super::query::{Audio, Container, Mode, QueryParams, StreamParams};
use super::stream::{self, Coding, Detections, Overlay, StreamJob, DETECTIONS_CACHE_CONTROL};
use super::{Job, PlanError};
use crate::catalog::FileRecord;
use crate::media::codec::{self, ByteStream};
use crate::media::Orientation;

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
        container: params.container,
        cache_control: DETECTIONS_CACHE_CONTROL,
        source: file.location.stored(),
        file,
    })
}

/// `/video`.
pub fn plan(file: FileRecord, query: &QueryParams) -> Result<Job, PlanError> {
    let params = StreamParams::parse(query)?;
    let reencoded = params.audio == Audio::Off || params.container == Container::Mp4;
    match params.mode {
        Mode::Debug => plan_bbox(file, query, true).map(Job::Stream),
        Mode::Normal if reencoded => {
            let last = stream::last_frame(&file);
            let first = stream::start_frame(query, 0, last)?;
            let coding = match copyable(&file) {
                // MP4 is always re-encoded: H.264 in a browser's profile, whatever the file.
                Some(stream) if first == 0 && params.container == Container::Ts => {
                    Coding::Copy(stream)
                }
                _ => Coding::Reencode,
            };
            Ok(Job::Stream(StreamJob {
                first,
                last,
                audio: stream::audio(&params, &file),
                overlay: None,
                coding,
                container: params.container,
                cache_control: DETECTIONS_CACHE_CONTROL,
                source: file.location.stored(),
                file,
            }))
        }
        Mode::Normal if query.has("start") => Err(PlanError::bad_parameter(
            "start applies to re-encoded streams (mode=debug, audio=off or format=mp4); the \
             original file is served as is: seek in it with a Range header",
        )),
        Mode::Normal => Ok(Job::Original(file)),
    }
}

/// How the file's video goes into MPEG-TS as it is, if it does: a codec MPEG-TS carries,
/// starting at a keyframe, shown as decoded. (An MP4 cut with an edit list between
/// keyframes starts with frames that only show after decoding a hidden keyframe, which the
/// muxer drops; a sideways file's rotation lives in its container, which MPEG-TS cannot
/// carry: those are re-encoded.)
fn copyable(file: &FileRecord) -> Option<ByteStream> {
    let index = &file.media.frame_index;
    codec::byte_stream(&file.media.video_codec)
        .filter(|_| index.is_keyframe(0) && index.orientation() == Orientation::Identity)
}
