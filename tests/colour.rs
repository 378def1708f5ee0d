//! Outputs say what colours they hold. Clips carry the colour description GStreamer decoded
//! with in their H.264 VUI: the stream's own, or for untagged video BT.601 below 720 lines
//! and BT.709 from HD up (as players assume). Thumbnails carry an ICC profile with the
//! stream's primaries and the sRGB curve (sRGB itself for BT.709 and untagged video), and
//! none for PQ/HLG video, whose thumbnails are not tone-mapped.

mod common;

use std::path::{Path, PathBuf};

use common::{ffprobe_values, generated, Session};

/// 1 s of testsrc2 at `size`, H.264 with `tags` (ffmpeg's colour options).
fn video(name: &str, size: &str, tags: &[&str]) -> PathBuf {
    let input = format!("testsrc2=size={size}:rate=25:duration=1");
    let mut args = vec!["-f", "lavfi", "-i", &input, "-c:v", "libx264", "-pix_fmt"];
    args.extend(["yuv420p", "-preset", "ultrafast"]);
    args.extend(tags);
    generated(name, &args)
}

/// The ICC profile in the APP2 segment of `jpeg`, if any.
fn icc_profile(jpeg: &[u8]) -> Option<&[u8]> {
    const SIGNATURE: &[u8] = b"ICC_PROFILE\0";
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xFF && jpeg[at + 1] != 0xDA {
        let length = u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]) as usize;
        let body = &jpeg[at + 4..at + 2 + length];
        if jpeg[at + 1] == 0xE2 && body.starts_with(SIGNATURE) {
            // Chunk 1 of 1.
            assert_eq!(&body[SIGNATURE.len()..SIGNATURE.len() + 2], &[1, 1]);
            return Some(&body[SIGNATURE.len() + 2..]);
        }
        at += 2 + length;
    }
    None
}

/// Whether `profile`'s description (a `mluc` text, UTF-16BE) is `text`.
fn described_as(profile: &[u8], text: &str) -> bool {
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    profile.windows(utf16.len()).any(|w| w == utf16.as_slice())
}

/// A thumbnail of `video`, and the colour description of a clip of it (ffprobe's
/// `color_space,color_transfer,color_primaries`).
fn outputs(session: &Session, video: &Path) -> (Vec<u8>, String) {
    let uuid = session.server.import(video, None);
    let jpeg = session.save(&format!("/api/v1/file/{uuid}/thumbnail?frame=5"), "t.jpg");
    let clip = session.save(
        &format!("/api/v1/file/{uuid}/clip?start_frame=0&end_frame=4"),
        &format!("{uuid}.ts"),
    );
    let entry = "stream=color_space,color_transfer,color_primaries";
    let description = ffprobe_values(&clip, "v:0", entry).remove(0);
    (std::fs::read(jpeg).unwrap(), description)
}

#[test]
fn outputs_are_tagged_with_the_colours_used() {
    let session = Session::start();

    let (hd_jpeg, hd_clip) = outputs(&session, &video("colour-hd.mp4", "1280x720", &[]));
    assert_eq!(hd_clip, "bt709,bt709,bt709");
    let srgb = icc_profile(&hd_jpeg).expect("an ICC profile").to_vec();
    assert!(described_as(&srgb, "sRGB built-in"));

    let (sd_jpeg, sd_clip) = outputs(&session, &video("colour-sd.mp4", "640x480", &[]));
    assert_eq!(sd_clip, "smpte170m,smpte170m,smpte170m");
    // Players show SD video's values on sRGB displays as they are.
    assert_eq!(icc_profile(&sd_jpeg), Some(srgb.as_slice()));

    let bt2020 = [
        "-colorspace",
        "bt2020nc",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "bt2020-10",
    ];
    let (wide_jpeg, wide_clip) = outputs(&session, &video("colour-bt2020.mp4", "640x360", &bt2020));
    assert_eq!(wide_clip, "bt2020nc,bt2020-10,bt2020");
    let wide = icc_profile(&wide_jpeg).expect("an ICC profile");
    assert!(described_as(wide, "Bt2020 primaries, sRGB curve"));

    let pq = [
        "-colorspace",
        "bt2020nc",
        "-color_primaries",
        "bt2020",
        "-color_trc",
        "smpte2084",
    ];
    let (pq_jpeg, _) = outputs(&session, &video("colour-pq.mp4", "640x360", &pq));
    assert_eq!(icc_profile(&pq_jpeg), None);

    // ffmpeg reads the profile as the JPEG's.
    let jpeg = session.dir.path().join("hd.jpg");
    std::fs::write(&jpeg, &hd_jpeg).unwrap();
    let side_data = ffprobe_values(&jpeg, "v:0", "frame_side_data=side_data_type");
    assert!(
        side_data.iter().any(|value| value.contains("ICC")),
        "{side_data:?}"
    );
}
