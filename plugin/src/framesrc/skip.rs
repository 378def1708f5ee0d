//! Skipping work before `start`: after a seek the decoder must decode from the preceding
//! keyframe, but pictures nothing refers to (H.264 non-reference pictures, HEVC sub-layer
//! non-reference pictures of the highest sub-layer: usually most B-frames) and that are shown
//! before `start` need not be decoded at all.

use crate::nal::nal_units;
pub use crate::nal::NalFraming;

/// A stream whose unreferenced pictures can be told from their NAL unit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    H264(NalFraming),
    /// `highest_temporal_id`: the stream's highest sub-layer, from the `hvcC` record.
    H265 {
        framing: NalFraming,
        highest_temporal_id: u8,
    },
}

impl Coding {
    /// From video/x-h264 or video/x-h265 caps; `None` for other caps or an unknown framing,
    /// and for HEVC without an `hvcC` record (byte-stream): its sub-layers are unknown.
    pub fn from_caps(caps: &gst::CapsRef) -> Option<Self> {
        let s = caps.structure(0)?;
        let codec_data_byte = |i: usize| {
            let buffer = s.get::<gst::Buffer>("codec_data").ok()?;
            let map = buffer.map_readable().ok()?;
            map.get(i).copied()
        };
        match (s.name().as_str(), s.get::<&str>("stream-format").ok()?) {
            ("video/x-h264", "avc" | "avc3") => {
                // avcC: lengthSizeMinusOne in the low two bits of byte 4.
                let length = (codec_data_byte(4)? & 0x3) as usize + 1;
                Some(Coding::H264(NalFraming::LengthPrefixed(length)))
            }
            ("video/x-h264", "byte-stream") => Some(Coding::H264(NalFraming::ByteStream)),
            ("video/x-h265", "hvc1" | "hev1") => {
                // hvcC byte 21: constantFrameRate (2 bits), numTemporalLayers (3),
                // temporalIdNested (1), lengthSizeMinusOne (2).
                let byte = codec_data_byte(21)?;
                let layers = byte >> 3 & 0x7;
                // 0: not known, so nothing is skipped.
                (layers > 0).then(|| Coding::H265 {
                    framing: NalFraming::LengthPrefixed((byte & 0x3) as usize + 1),
                    highest_temporal_id: layers - 1,
                })
            }
            _ => None,
        }
    }

    /// Whether this access unit holds coded slices and no other picture is predicted from
    /// any of them.
    pub fn is_non_reference(&self, access_unit: &[u8]) -> bool {
        let framing = match *self {
            Coding::H264(framing) | Coding::H265 { framing, .. } => framing,
        };
        let mut slices = 0;
        for nal in nal_units(access_unit, framing) {
            let referenced = match *self {
                Coding::H264(_) => {
                    let Some(&header) = nal.first() else { continue };
                    let (ref_idc, nal_type) = (header >> 5 & 0x3, header & 0x1f);
                    if !(1..=5).contains(&nal_type) {
                        continue;
                    }
                    ref_idc != 0
                }
                Coding::H265 {
                    highest_temporal_id,
                    ..
                } => {
                    let [first, second, ..] = *nal else { continue };
                    let nal_type = first >> 1 & 0x3f;
                    if nal_type > 31 {
                        continue; // Not a coded slice.
                    }
                    let layer = (first & 0x1) << 5 | second >> 3;
                    let temporal_id = (second & 0x7).wrapping_sub(1);
                    // TRAIL_N, TSA_N, STSA_N, RADL_N, RASL_N, RSV_VCL_N10/12/14: no picture
                    // of the same sub-layer refers to them, and none is above the highest.
                    let sub_layer_non_reference = nal_type <= 14 && nal_type % 2 == 0;
                    !(sub_layer_non_reference && layer == 0 && temporal_id == highest_temporal_id)
                }
            };
            if referenced {
                return false;
            }
            slices += 1;
        }
        slices > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4-byte-length-prefixed access unit of NAL units with these headers.
    fn units(headers: &[&[u8]]) -> Vec<u8> {
        headers
            .iter()
            .flat_map(|h| {
                let mut unit = vec![0, 0, 0, h.len() as u8 + 1];
                unit.extend_from_slice(h);
                unit.push(0x88);
                unit
            })
            .collect()
    }

    #[test]
    fn classifies_h264_slices_by_nal_ref_idc() {
        let h264 = Coding::H264(NalFraming::LengthPrefixed(4));
        // SEI (type 6) + non-reference slice (ref_idc 0, type 1).
        assert!(h264.is_non_reference(&units(&[&[0x06], &[0x01]])));
        // Reference B/P slice (ref_idc 2, type 1) and IDR (ref_idc 3, type 5).
        assert!(!h264.is_non_reference(&units(&[&[0x41]])));
        assert!(!h264.is_non_reference(&units(&[&[0x65]])));
        // Mixed slices: one is referenced, so the picture is.
        assert!(!h264.is_non_reference(&units(&[&[0x01], &[0x21]])));
        // No slice at all.
        assert!(!h264.is_non_reference(&units(&[&[0x06]])));
        assert!(!h264.is_non_reference(&[]));
        // Truncated length: ignored, not a panic.
        assert!(!h264.is_non_reference(&[0, 0, 9, 9, 0x01]));
    }

    #[test]
    fn byte_stream_framing() {
        let h264 = Coding::H264(NalFraming::ByteStream);
        let bytes = [0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x01, 0x88, 0x80];
        assert!(h264.is_non_reference(&bytes));
        let bytes = [0, 0, 1, 0x41, 0x9a, 0, 0, 1, 0x01, 0x88];
        assert!(!h264.is_non_reference(&bytes));
    }

    /// An HEVC NAL unit header: type, layer 0, this temporal id.
    fn hevc(nal_type: u8, temporal_id: u8) -> [u8; 2] {
        [nal_type << 1, temporal_id + 1]
    }

    #[test]
    fn classifies_hevc_slices_by_type_and_sub_layer() {
        let single = Coding::H265 {
            framing: NalFraming::LengthPrefixed(4),
            highest_temporal_id: 0,
        };
        // Prefix SEI (39) + TRAIL_N (0): unreferenced; TRAIL_R (1), IDR_W_RADL (19),
        // CRA (21): referenced.
        assert!(single.is_non_reference(&units(&[&hevc(39, 0), &hevc(0, 0)])));
        assert!(single.is_non_reference(&units(&[&hevc(8, 0)])));
        for nal_type in [1, 19, 21] {
            assert!(!single.is_non_reference(&units(&[&hevc(nal_type, 0)])));
        }
        assert!(!single.is_non_reference(&units(&[&hevc(0, 0), &hevc(1, 0)])));
        assert!(!single.is_non_reference(&units(&[&hevc(39, 0)])));
        // With sub-layers, a TRAIL_N below the highest may be referred to from above it.
        let layered = Coding::H265 {
            framing: NalFraming::LengthPrefixed(4),
            highest_temporal_id: 2,
        };
        assert!(!layered.is_non_reference(&units(&[&hevc(0, 1)])));
        assert!(layered.is_non_reference(&units(&[&hevc(0, 2)])));
        // Another layer (nuh_layer_id 1): left alone.
        assert!(!single.is_non_reference(&units(&[&[0x00, 0x09]])));
    }

    #[test]
    fn coding_from_caps() {
        let hvcc = |byte21: u8| {
            let mut record = vec![1; 23];
            record[21] = byte21;
            gst::Buffer::from_mut_slice(record)
        };
        gst::init().unwrap();
        let caps = gst::Caps::builder("video/x-h265")
            .field("stream-format", "hvc1")
            .field("codec_data", hvcc(0x0f))
            .build();
        assert_eq!(
            Coding::from_caps(&caps),
            Some(Coding::H265 {
                framing: NalFraming::LengthPrefixed(4),
                highest_temporal_id: 0
            })
        );
        // Sub-layers unknown: nothing is skipped.
        let caps = gst::Caps::builder("video/x-h265")
            .field("stream-format", "hvc1")
            .field("codec_data", hvcc(0x03))
            .build();
        assert_eq!(Coding::from_caps(&caps), None);
        let caps = gst::Caps::builder("video/x-h265")
            .field("stream-format", "byte-stream")
            .build();
        assert_eq!(Coding::from_caps(&caps), None);
    }
}
