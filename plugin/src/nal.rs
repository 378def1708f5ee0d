//! NAL units of H.264 and HEVC access units, as framed in GStreamer buffers: one splitter for
//! framesrc's skipping of unreferenced pictures and smart cuts' IDR checks.

/// How NAL units are framed, from the caps' `stream-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NalFraming {
    /// `avc`/`avc3`/`hvc1`/`hev1`: NAL units prefixed by their length in this many bytes.
    LengthPrefixed(usize),
    /// `byte-stream`: NAL units after 00 00 01 start codes.
    ByteStream,
}

/// The NAL units of `data` (without their length prefixes or start codes).
pub fn nal_units(data: &[u8], framing: NalFraming) -> Vec<&[u8]> {
    let mut units = Vec::new();
    match framing {
        NalFraming::LengthPrefixed(size) => {
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
        NalFraming::ByteStream => {
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
