//! What smart cuts need to know of an H.264 access unit: whether it is an IDR picture.
//! Pure byte parsing, shared by the element and the server's planning probe.

/// NAL unit type of an IDR picture's slices.
const NAL_IDR: u8 = 5;

/// The NAL unit types of an Annex B (byte-stream) access unit, in order.
pub fn nal_types(au: &[u8]) -> Vec<u8> {
    crate::nal::nal_units(au, crate::nal::NalFraming::ByteStream)
        .iter()
        .filter_map(|unit| unit.first().map(|header| header & 0x1f))
        .collect()
}

/// What a smart cut's packets are: H.264 access units after start codes.
pub fn byte_stream_caps() -> gst::Caps {
    gst::Caps::builder("video/x-h264")
        .field("stream-format", "byte-stream")
        .field("alignment", "au")
        .build()
}

/// Whether an Annex B access unit is an IDR picture: only these start a GOP that no later
/// picture reaches across (an I-frame of an open GOP is followed by pictures that refer to the
/// GOP before it).
pub fn is_idr(au: &[u8]) -> bool {
    nal_types(au).contains(&NAL_IDR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_types_after_start_codes() {
        // AUD, SPS, PPS, IDR slice (4-byte and 3-byte start codes).
        let au = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x64, 0, 0, 1, 0x68, 0xee, 0, 0, 1, 0x65,
            0x88,
        ];
        assert_eq!(nal_types(&au), [9, 7, 8, 5]);
        assert!(is_idr(&au));
        // A non-IDR I slice (type 1) with SEI.
        let au = [0, 0, 0, 1, 0x06, 0x05, 0, 0, 1, 0x41, 0x9a];
        assert_eq!(nal_types(&au), [6, 1]);
        assert!(!is_idr(&au));
        assert!(nal_types(&[]).is_empty());
    }
}
