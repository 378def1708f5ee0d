//! Display orientation: how decoded frames are turned to be shown upright.
//!
//! Phones record sideways and say so in the container (MP4/MOV `tkhd` matrix, the old
//! `rotate` tag, which ffmpeg writes as a matrix): players, and ffmpeg's CLI, turn the
//! picture. GStreamer reports it as the `image-orientation` tag (qtdemux reads the matrix;
//! other demuxers do when their container has it), which `probe` reads. framecast shows
//! frames as players do: every pipeline turns the decoded frame with `videoflip` right
//! after framesrc, the file record's width and height are the upright picture's, and crops
//! and detection boxes are in its pixels.

use gst_video::VideoOrientationMethod;

/// One of the eight ways to turn a picture, named as `videoflip`'s `video-direction` (the
/// transform that makes the decoded frame upright).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    #[default]
    Identity,
    /// 90° clockwise.
    Rotate90R,
    Rotate180,
    /// 90° counterclockwise.
    Rotate90L,
    /// Mirrored left to right.
    FlipHorizontal,
    /// Mirrored top to bottom.
    FlipVertical,
    /// Transposed across the upper-left/lower-right diagonal.
    FlipUpperLeftDiagonal,
    /// Transposed across the upper-right/lower-left diagonal.
    FlipUpperRightDiagonal,
}

impl Orientation {
    /// All of them, in their stored order (see [`Orientation::code`]).
    const ALL: [Orientation; 8] = [
        Orientation::Identity,
        Orientation::Rotate90R,
        Orientation::Rotate180,
        Orientation::Rotate90L,
        Orientation::FlipHorizontal,
        Orientation::FlipVertical,
        Orientation::FlipUpperLeftDiagonal,
        Orientation::FlipUpperRightDiagonal,
    ];

    /// From the `image-orientation` tag, mapped as `videoflip video-direction=auto` maps it
    /// (`gst_video_orientation_from_tag`).
    pub fn from_tags(tags: &gst::TagListRef) -> Option<Self> {
        Some(match VideoOrientationMethod::from_tag(tags)? {
            VideoOrientationMethod::Identity => Orientation::Identity,
            VideoOrientationMethod::_90r => Orientation::Rotate90R,
            VideoOrientationMethod::_180 => Orientation::Rotate180,
            VideoOrientationMethod::_90l => Orientation::Rotate90L,
            VideoOrientationMethod::Horiz => Orientation::FlipHorizontal,
            VideoOrientationMethod::Vert => Orientation::FlipVertical,
            VideoOrientationMethod::UlLr => Orientation::FlipUpperLeftDiagonal,
            VideoOrientationMethod::UrLl => Orientation::FlipUpperRightDiagonal,
            _ => return None,
        })
    }

    /// `videoflip`'s `video-direction` value (the nick of `GstVideoOrientationMethod`).
    pub fn video_direction(self) -> &'static str {
        match self {
            Orientation::Identity => "identity",
            Orientation::Rotate90R => "90r",
            Orientation::Rotate180 => "180",
            Orientation::Rotate90L => "90l",
            Orientation::FlipHorizontal => "horiz",
            Orientation::FlipVertical => "vert",
            Orientation::FlipUpperLeftDiagonal => "ul-lr",
            Orientation::FlipUpperRightDiagonal => "ur-ll",
        }
    }

    /// Whether the upright picture's width is the decoded frame's height.
    pub fn swaps_axes(self) -> bool {
        matches!(
            self,
            Orientation::Rotate90R
                | Orientation::Rotate90L
                | Orientation::FlipUpperLeftDiagonal
                | Orientation::FlipUpperRightDiagonal
        )
    }

    /// The upright size of a decoded `width` x `height` frame.
    pub fn upright(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_axes() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// Stable number for storage.
    pub fn code(self) -> u8 {
        Self::ALL.iter().position(|&o| o == self).unwrap() as u8
    }

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(code as usize).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for o in Orientation::ALL {
            assert_eq!(Orientation::from_code(o.code()), Some(o));
        }
        assert_eq!(Orientation::from_code(8), None);
    }

    #[test]
    fn tags_map_as_videoflip_maps_them() {
        gst::init().unwrap();
        let tags = |value: &str| {
            let mut tags = gst::TagList::new();
            tags.get_mut()
                .unwrap()
                .add_generic("image-orientation", value, gst::TagMergeMode::Replace)
                .unwrap();
            tags
        };
        // qtdemux's tag for a file ffprobe shows with rotation=90 (turned counterclockwise).
        assert_eq!(
            Orientation::from_tags(&tags("rotate-270")),
            Some(Orientation::Rotate90L)
        );
        assert_eq!(
            Orientation::from_tags(&tags("rotate-90")),
            Some(Orientation::Rotate90R)
        );
        assert_eq!(
            Orientation::from_tags(&tags("flip-rotate-0")),
            Some(Orientation::FlipHorizontal)
        );
        assert_eq!(Orientation::from_tags(&gst::TagList::new()), None);
        assert_eq!(Orientation::Rotate90L.upright(320, 240), (240, 320));
        assert_eq!(Orientation::Rotate180.upright(320, 240), (320, 240));
    }
}
