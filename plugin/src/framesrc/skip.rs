//! Skipping work before `start`: after a seek the decoder must decode from the preceding
//! keyframe, but frames nothing refers to (H.264 non-reference pictures, usually most
//! B-frames) and that are shown before `start` need not be decoded at all.

/// How H.264 access units are framed, from the caps' `stream-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Framing {
    /// `avc`/`avc3`: NAL units prefixed by their length in this many bytes.
    LengthPrefixed(usize),
    /// `byte-stream`: NAL units after 00 00 01 start codes.
    ByteStream,
}

impl H264Framing {
    /// From video/x-h264 caps; `None` for other caps or an unknown framing.
    pub fn from_caps(caps: &gst::CapsRef) -> Option<Self> {
        let s = caps.structure(0)?;
        if s.name() != "video/x-h264" {
            return None;
        }
        match s.get::<&str>("stream-format").ok()? {
            "avc" | "avc3" => {
                let codec_data = s.get::<gst::Buffer>("codec_data").ok()?;
                let map = codec_data.map_readable().ok()?;
                // avcC: lengthSizeMinusOne in the low two bits of byte 4.
                Some(H264Framing::LengthPrefixed(
                    (*map.get(4)? & 0x3) as usize + 1,
                ))
            }
            "byte-stream" => Some(H264Framing::ByteStream),
            _ => None,
        }
    }
}

/// Whether this access unit holds coded slices and all of them have `nal_ref_idc == 0`:
/// no other picture is predicted from it.
pub fn is_non_reference(access_unit: &[u8], framing: H264Framing) -> bool {
    let mut slices = 0;
    for nal in nal_units(access_unit, framing) {
        let Some(&header) = nal.first() else { continue };
        let (ref_idc, nal_type) = (header >> 5 & 0x3, header & 0x1f);
        if (1..=5).contains(&nal_type) {
            if ref_idc != 0 {
                return false;
            }
            slices += 1;
        }
    }
    slices > 0
}

fn nal_units(data: &[u8], framing: H264Framing) -> Vec<&[u8]> {
    let mut units = Vec::new();
    match framing {
        H264Framing::LengthPrefixed(size) => {
            let mut rest = data;
            while rest.len() > size {
                let length = rest[..size]
                    .iter()
                    .fold(0usize, |acc, &b| acc << 8 | b as usize);
                let Some(unit) = rest.get(size..size + length) else {
                    break;
                };
                units.push(unit);
                rest = &rest[size + length..];
            }
        }
        H264Framing::ByteStream => {
            // Each unit starts after 00 00 01 and runs to the next start code.
            let starts: Vec<usize> = data
                .windows(3)
                .enumerate()
                .filter(|(_, w)| *w == [0, 0, 1])
                .map(|(i, _)| i + 3)
                .collect();
            for (i, &start) in starts.iter().enumerate() {
                let end = starts.get(i + 1).map_or(data.len(), |next| next - 3);
                units.push(&data[start..end.max(start)]);
            }
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-byte-length-prefixed access unit of NAL units with these header bytes.
    fn avc(headers: &[u8]) -> Vec<u8> {
        headers
            .iter()
            .flat_map(|&h| [0, 0, 0, 2, h, 0x88])
            .collect()
    }

    #[test]
    fn classifies_slices_by_nal_ref_idc() {
        let length4 = H264Framing::LengthPrefixed(4);
        // SEI (type 6) + non-reference slice (ref_idc 0, type 1).
        assert!(is_non_reference(&avc(&[0x06, 0x01]), length4));
        // Reference B/P slice (ref_idc 2, type 1) and IDR (ref_idc 3, type 5).
        assert!(!is_non_reference(&avc(&[0x41]), length4));
        assert!(!is_non_reference(&avc(&[0x65]), length4));
        // Mixed slices: one is referenced, so the picture is.
        assert!(!is_non_reference(&avc(&[0x01, 0x21]), length4));
        // No slice at all.
        assert!(!is_non_reference(&avc(&[0x06]), length4));
        assert!(!is_non_reference(&[], length4));
        // Truncated length: ignored, not a panic.
        assert!(!is_non_reference(&[0, 0, 9, 9, 0x01], length4));
    }

    #[test]
    fn byte_stream_framing() {
        let bytes = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x01, 0x88, 0x80];
        assert!(is_non_reference(&bytes, H264Framing::ByteStream));
        let bytes = [0, 0, 1, 0x41, 0x9a, 0, 0, 1, 0x01, 0x88];
        assert!(!is_non_reference(&bytes, H264Framing::ByteStream));
    }
}
