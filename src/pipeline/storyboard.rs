//! A storyboard sprite sheet: each tile the keyframe at or before its time, reached by a
//! seek and decoded alone (a keyframe needs no other frame), scaled, placed in the sheet,
//! and the sheet encoded as JPEG. No frame but the tiles' keyframes is decoded, so a sheet
//! of a long video costs about as many keyframe decodes as it has tiles.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gst_video::prelude::*;

use super::{PipelineError, RunningPipeline};
use crate::request::storyboard::{Storyboard, COLUMNS};

/// JPEG quality of the sheets: thumbnails for a seek bar.
const QUALITY: i32 = 75;

/// About what rendering a sheet holds at its peak, for admission: the decoder's frames at
/// the source size (as a thumbnail's), plus the sheet in RGB.
pub fn memory_cost(storyboard: &Storyboard, sheet: u32) -> u64 {
    let media = &storyboard.file.media;
    let (w, h) = storyboard.sheet_size(sheet);
    20 * media.width as u64 * media.height as u64 * 3 / 2 + 4 * w as u64 * h as u64 + (4 << 20)
}

/// Renders sheet `sheet` as JPEG within `timeout`. Blocking: call from a blocking thread.
pub fn render(
    storyboard: &Storyboard,
    sheet: u32,
    timeout: Duration,
) -> Result<Vec<u8>, PipelineError> {
    let deadline = Instant::now() + timeout;
    let (sheet_w, sheet_h) = storyboard.sheet_size(sheet);
    let (tile_w, tile_h) = (storyboard.width as usize, storyboard.height as usize);
    let mut pixels = vec![0u8; sheet_w as usize * sheet_h as usize * 3];
    let frames = storyboard.sheet_frames(sheet);
    let index = &storyboard.file.media.frame_index;
    let (running, appsink, bus) = keyframe_pipeline(storyboard)?;
    // Seeks work once the pipeline has prerolled.
    wait_prerolled(&bus, deadline, timeout)?;
    for (tile, &frame) in frames.iter().enumerate() {
        // Exactly to the keyframe's time: the demuxer starts at the keyframe and the first
        // frame the decoder gives is the keyframe, decoded alone. (A key-unit seek with
        // SNAP_BEFORE decoded most of a GOP per tile with GStreamer 1.22's qtdemux: 480 ms a
        // tile instead of 10 on a 720p file with a 250-frame GOP.)
        let position = index.timestamp(frame).unwrap_or(0);
        running
            .pipeline()
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::ClockTime::from_nseconds(position),
            )
            .map_err(|_| PipelineError::Build(format!("cannot seek to frame {frame}")))?;
        wait_prerolled(&bus, deadline, timeout)?;
        let sample = appsink
            .pull_preroll()
            .map_err(|_| PipelineError::Build(format!("no image for frame {frame}")))?;
        copy_tile(&sample, &mut pixels, sheet_w as usize, tile, tile_w, tile_h)?;
    }
    drop(running);
    encode_jpeg(pixels, sheet_w, sheet_h, deadline, timeout)
}

/// `filesrc ! decodebin (souphttpsrc for a URL) ! videoconvert ! videoscale ! RGB tile ! appsink`, prerolled
/// (PAUSED): each seek then decodes from the keyframe it lands on to the first frame.
fn keyframe_pipeline(
    storyboard: &Storyboard,
) -> Result<(RunningPipeline, gst_app::AppSink, gst::Bus), PipelineError> {
    let build = |e: gst::glib::BoolError| PipelineError::Build(e.to_string());
    let pipeline = gst::Pipeline::new();
    let source = gstframecast::reader::make(&storyboard.source).map_err(build)?;
    source.set_property("location", storyboard.source.as_str());
    let decode = gst::ElementFactory::make("decodebin")
        .build()
        .map_err(build)?;
    let convert = gst::ElementFactory::make("videoconvert")
        .build()
        .map_err(build)?;
    let scale = gst::ElementFactory::make("videoscale")
        .build()
        .map_err(build)?;
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", storyboard.width as i32)
        .field("height", storyboard.height as i32)
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
        .build();
    let appsink = gst_app::AppSink::builder()
        .caps(&caps)
        .sync(false)
        .max_buffers(1)
        .build();
    pipeline
        .add_many([&source, &decode, &convert, &scale, appsink.upcast_ref()])
        .map_err(build)?;
    source.link(&decode).map_err(build)?;
    gst::Element::link_many([&convert, &scale, appsink.upcast_ref()]).map_err(build)?;
    // Only the video is decoded; the audio pad stays unlinked.
    let convert_weak = convert.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let is_video = pad
            .current_caps()
            .and_then(|caps| caps.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if let (true, Some(convert)) = (is_video, convert_weak.upgrade()) {
            if let Some(sink) = convert.static_pad("sink") {
                if !sink.is_linked() {
                    let _ = pad.link(&sink);
                }
            }
        }
    });
    let running = RunningPipeline::pause(pipeline)?;
    let bus = running.pipeline().bus().expect("a pipeline has a bus");
    Ok((running, appsink, bus))
}

/// Waits for the pipeline to preroll (after the start or a flushing seek).
fn wait_prerolled(
    bus: &gst::Bus,
    deadline: Instant,
    timeout: Duration,
) -> Result<(), PipelineError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(PipelineError::Timeout(timeout));
        }
        let Some(message) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::AsyncDone, gst::MessageType::Error],
        ) else {
            return Err(PipelineError::Timeout(timeout));
        };
        match message.view() {
            gst::MessageView::AsyncDone(_) => return Ok(()),
            gst::MessageView::Error(error) => {
                return Err(PipelineError::Failed {
                    source_element: error
                        .src()
                        .map(|s| s.path_string().to_string())
                        .unwrap_or_default(),
                    message: error.error().to_string(),
                    debug: error.debug().map(|d| d.to_string()),
                })
            }
            _ => {}
        }
    }
}

/// Copies the RGB frame of `sample` into tile `tile` of the sheet.
fn copy_tile(
    sample: &gst::Sample,
    sheet: &mut [u8],
    sheet_w: usize,
    tile: usize,
    tile_w: usize,
    tile_h: usize,
) -> Result<(), PipelineError> {
    let no_image = || PipelineError::Build("the decoder gave no image".into());
    let buffer = sample.buffer().ok_or_else(no_image)?;
    let info = sample
        .caps()
        .and_then(|caps| gst_video::VideoInfo::from_caps(caps).ok())
        .ok_or_else(no_image)?;
    let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, &info)
        .map_err(|_| no_image())?;
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).map_err(|_| no_image())?;
    let (x0, y0) = (
        (tile % COLUMNS as usize) * tile_w,
        (tile / COLUMNS as usize) * tile_h,
    );
    let row_bytes = tile_w * 3;
    for row in 0..tile_h {
        let from = &data[row * stride..row * stride + row_bytes];
        let at = ((y0 + row) * sheet_w + x0) * 3;
        sheet[at..at + row_bytes].copy_from_slice(from);
    }
    Ok(())
}

/// `appsrc ! jpegenc ! appsink` on the sheet's pixels.
fn encode_jpeg(
    pixels: Vec<u8>,
    width: u32,
    height: u32,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<u8>, PipelineError> {
    let build = |e: gst::glib::BoolError| PipelineError::Build(e.to_string());
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, width, height)
        .fps(gst::Fraction::new(0, 1))
        .build()
        .map_err(build)?;
    let source = gst_app::AppSrc::builder()
        .caps(&info.to_caps().map_err(build)?)
        .format(gst::Format::Time)
        .build();
    let encoder = gst::ElementFactory::make("jpegenc")
        .property("quality", QUALITY)
        .build()
        .map_err(build)?;
    let sink = gst_app::AppSink::builder().sync(false).build();
    let pipeline = gst::Pipeline::new();
    pipeline
        .add_many([source.upcast_ref(), &encoder, sink.upcast_ref()])
        .map_err(build)?;
    gst::Element::link_many([source.upcast_ref(), &encoder, sink.upcast_ref()]).map_err(build)?;
    let (_running, _bus) = RunningPipeline::play(pipeline)?;
    // RGB rows padded to 4 bytes, as GStreamer lays them out.
    let stride = info.stride()[0] as usize;
    let row = width as usize * 3;
    let buffer = if stride == row {
        gst::Buffer::from_mut_slice(pixels)
    } else {
        let mut padded = vec![0u8; stride * height as usize];
        for y in 0..height as usize {
            padded[y * stride..y * stride + row].copy_from_slice(&pixels[y * row..(y + 1) * row]);
        }
        gst::Buffer::from_mut_slice(padded)
    };
    source
        .push_buffer(buffer)
        .map_err(|e| PipelineError::Build(format!("cannot encode the sheet: {e:?}")))?;
    let _ = source.end_of_stream();
    let left = deadline.saturating_duration_since(Instant::now());
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_nseconds(left.as_nanos() as u64))
        .ok_or(PipelineError::Timeout(timeout))?;
    let buffer = sample
        .buffer()
        .ok_or_else(|| PipelineError::Build("jpegenc gave no image".into()))?;
    let map = buffer
        .map_readable()
        .map_err(|_| PipelineError::Build("jpegenc gave no image".into()))?;
    Ok(map.as_slice().to_vec())
}
