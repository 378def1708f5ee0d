//! Drawing filled rectangles, box outlines and text straight into the planes of an 8-bit
//! video frame, whatever its layout (planar, semi-planar, packed; YUV, RGB or grey), so no
//! conversion is needed around the element.
//!
//! Everything is built from one primitive, [`Canvas::fill`], which writes each component of
//! a colour (converted once per colour and format, see [`Layout::color`]) over the
//! rectangle, at the component's own subsampled resolution. Subsampled chroma is rounded
//! outwards: a chroma sample shared by a drawn pixel and an undrawn one takes the drawn
//! colour, so thin lines keep their hue. Luma (or RGB) outside what is drawn is never
//! touched.

use super::font;

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Where one component lives in the frame.
#[derive(Debug, Clone, Copy)]
struct Component {
    plane: usize,
    /// Byte offset of the component in a pixel group.
    offset: usize,
    /// Bytes between two samples of the component on a row.
    pixel_stride: usize,
    /// log2 of the horizontal and vertical subsampling.
    w_sub: u32,
    h_sub: u32,
}

/// The colour model of a format: which value goes in each component.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Model {
    /// Y'CbCr with the matrix coefficients (Kr, Kb) and range.
    Yuv {
        kr: f64,
        kb: f64,
        full_range: bool,
    },
    Rgb,
    Gray {
        full_range: bool,
    },
}

/// The colour value of each component, in component order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color([u8; 4]);

/// How a video format stores its pixels.
#[derive(Debug, Clone)]
pub struct Layout {
    components: Vec<Component>,
    model: Model,
    width: i64,
    height: i64,
}

impl Layout {
    /// The layout of `info`'s frames, or `None` for a format this module cannot draw on
    /// (more than 8 bits per component, palettes, tiles).
    pub fn new(info: &gst_video::VideoInfo) -> Option<Layout> {
        let format = info.format_info();
        let flags = format.flags();
        if format.bits() != 8
            || flags.contains(gst_video::VideoFormatFlags::PALETTE)
            || flags.contains(gst_video::VideoFormatFlags::TILED)
            || flags.contains(gst_video::VideoFormatFlags::COMPLEX)
        {
            return None;
        }
        let components = (0..format.n_components() as usize)
            .map(|i| Component {
                plane: format.plane()[i] as usize,
                offset: format.poffset()[i] as usize,
                pixel_stride: format.pixel_stride()[i] as usize,
                w_sub: format.w_sub()[i],
                h_sub: format.h_sub()[i],
            })
            .collect();
        let colorimetry = info.colorimetry();
        let full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
        let model = if format.is_rgb() {
            Model::Rgb
        } else if format.is_gray() {
            Model::Gray { full_range }
        } else {
            // BT.601 unless the caps say otherwise: that is what an unknown matrix means for
            // GStreamer's own converters at SD sizes.
            let (kr, kb) = match colorimetry.matrix() {
                gst_video::VideoColorMatrix::Bt709 => (0.2126, 0.0722),
                gst_video::VideoColorMatrix::Bt2020 => (0.2627, 0.0593),
                gst_video::VideoColorMatrix::Smpte240m => (0.212, 0.087),
                gst_video::VideoColorMatrix::Fcc => (0.30, 0.11),
                _ => (0.299, 0.114),
            };
            Model::Yuv { kr, kb, full_range }
        };
        Some(Layout {
            components,
            model,
            width: info.width() as i64,
            height: info.height() as i64,
        })
    }

    pub fn height(&self) -> i64 {
        self.height
    }

    /// `rgb` in this format's components; alpha, if any, opaque.
    pub fn color(&self, rgb: Rgb) -> Color {
        let (r, g, b) = (
            rgb.0 as f64 / 255.,
            rgb.1 as f64 / 255.,
            rgb.2 as f64 / 255.,
        );
        let byte = |v: f64| v.round().clamp(0., 255.) as u8;
        let values = match self.model {
            Model::Rgb => [rgb.0, rgb.1, rgb.2, 255],
            Model::Yuv { kr, kb, full_range } => {
                let y = kr * r + (1. - kr - kb) * g + kb * b;
                let pb = (b - y) / (2. * (1. - kb));
                let pr = (r - y) / (2. * (1. - kr));
                let (y_scale, y_offset, c_scale) = if full_range {
                    (255., 0., 255.)
                } else {
                    (219., 16., 224.)
                };
                [
                    byte(y_offset + y_scale * y),
                    byte(128. + c_scale * pb),
                    byte(128. + c_scale * pr),
                    255,
                ]
            }
            Model::Gray { full_range } => {
                // Luma of the BT.601 matrix.
                let y = 0.299 * r + 0.587 * g + 0.114 * b;
                let y = if full_range {
                    byte(255. * y)
                } else {
                    byte(16. + 219. * y)
                };
                [y, 0, 0, 255]
            }
        };
        Color(values)
    }

    /// Luma of `rgb`, 0..=1: to pick dark or light text on it.
    pub fn luma(rgb: Rgb) -> f64 {
        (0.299 * rgb.0 as f64 + 0.587 * rgb.1 as f64 + 0.114 * rgb.2 as f64) / 255.
    }
}

/// A half-open rectangle `[x0, x1) x [y0, y1)` in frame pixels; may lie partly or wholly
/// outside the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x0: i64,
    pub y0: i64,
    pub x1: i64,
    pub y1: i64,
}

impl Rect {
    pub fn new(x: i64, y: i64, w: i64, h: i64) -> Rect {
        Rect {
            x0: x,
            y0: y,
            x1: x + w,
            y1: y + h,
        }
    }
}

/// A mapped frame's planes, drawn on through its [`Layout`].
pub struct Canvas<'a> {
    layout: &'a Layout,
    planes: [&'a mut [u8]; 4],
    strides: [usize; 4],
}

impl<'a> Canvas<'a> {
    pub fn new(layout: &'a Layout, planes: [&'a mut [u8]; 4], strides: [usize; 4]) -> Self {
        Canvas {
            layout,
            planes,
            strides,
        }
    }

    pub fn width(&self) -> i64 {
        self.layout.width
    }

    pub fn height(&self) -> i64 {
        self.layout.height
    }

    /// Fills `rect`, clipped to the frame, with `color`.
    pub fn fill(&mut self, rect: Rect, color: Color) {
        let x0 = rect.x0.max(0);
        let y0 = rect.y0.max(0);
        let x1 = rect.x1.min(self.layout.width);
        let y1 = rect.y1.min(self.layout.height);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        for (component, &value) in self.layout.components.iter().zip(&color.0) {
            // Outward: the first and last samples covering any pixel of the rectangle.
            let cx0 = (x0 >> component.w_sub) as usize;
            let cx1 = ((x1 - 1) >> component.w_sub) as usize + 1;
            let cy0 = (y0 >> component.h_sub) as usize;
            let cy1 = ((y1 - 1) >> component.h_sub) as usize + 1;
            let stride = self.strides[component.plane];
            let step = component.pixel_stride;
            let first = cy0 * stride + component.offset + cx0 * step;
            let span = (cx1 - cx0 - 1) * step + 1;
            // From the first sample of the first row to the last of the last: one bounds
            // check, then rows as chunks of the stride.
            let end = (cy1 - 1) * stride + component.offset + (cx1 - 1) * step + 1;
            let area = &mut self.planes[component.plane][first..end];
            // Most fills are the 1 to 4 samples of an outline side or a font pixel, on many
            // rows: a plain loop beats a memset call per row there.
            match (step, span) {
                (1, 1..=8) => {
                    for row in area.chunks_mut(stride) {
                        row[..span].iter_mut().for_each(|v| *v = value);
                    }
                }
                (1, _) => {
                    for row in area.chunks_mut(stride) {
                        row[..span].fill(value);
                    }
                }
                _ => {
                    for row in area.chunks_mut(stride) {
                        row[..span]
                            .iter_mut()
                            .step_by(step)
                            .for_each(|v| *v = value);
                    }
                }
            }
        }
    }

    /// The outline of the `w` x `h` box at `x`, `y`: its outermost pixels and `thickness -
    /// 1` more outside, so nothing inside the box changes.
    pub fn outline(&mut self, x: i64, y: i64, w: i64, h: i64, thickness: i64, color: Color) {
        let grow = thickness.max(1) - 1;
        let (ox0, oy0, ox1, oy1) = (x - grow, y - grow, x + w + grow, y + h + grow);
        let (ix0, iy0, ix1, iy1) = (x + 1, y + 1, x + w - 1, y + h - 1);
        let rects = [
            Rect {
                x0: ox0,
                y0: oy0,
                x1: ox1,
                y1: iy0,
            },
            Rect {
                x0: ox0,
                y0: iy1.max(iy0),
                x1: ox1,
                y1: oy1,
            },
            Rect {
                x0: ox0,
                y0: iy0,
                x1: ix0,
                y1: iy1,
            },
            Rect {
                x0: ix1.max(ix0),
                y0: iy0,
                x1: ox1,
                y1: iy1,
            },
        ];
        for rect in rects {
            self.fill(rect, color);
        }
    }

    /// Draws `text` with its top-left corner at `x`, `y`, each font pixel a `scale` x
    /// `scale` square; one run of set pixels per glyph row is one fill.
    pub fn text(&mut self, x: i64, y: i64, scale: i64, text: &str, color: Color) {
        for (i, c) in text.chars().enumerate() {
            let glyph = font::glyph(c);
            let gx = x + i as i64 * text_advance(scale);
            for row in 0..font::HEIGHT {
                let mut column = 0;
                while column < font::WIDTH {
                    if !font::pixel(glyph, column, row) {
                        column += 1;
                        continue;
                    }
                    let start = column;
                    while column < font::WIDTH && font::pixel(glyph, column, row) {
                        column += 1;
                    }
                    self.fill(
                        Rect::new(
                            gx + start as i64 * scale,
                            y + row as i64 * scale,
                            (column - start) as i64 * scale,
                            scale,
                        ),
                        color,
                    );
                }
            }
        }
    }
}

impl Canvas<'_> {
    /// Blends `color` into the frame through `mask` (text rendered by cairo), its top-left
    /// corner at `x`, `y`, clipped to the frame. A subsampled chroma sample takes the mean
    /// coverage of the pixels it covers.
    pub fn blend(&mut self, x: i64, y: i64, mask: &super::text::Mask, color: Color) {
        let x0 = x.max(0);
        let y0 = y.max(0);
        let x1 = (x + mask.width).min(self.layout.width);
        let y1 = (y + mask.height).min(self.layout.height);
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let coverage = |px: i64, py: i64| -> u32 {
            if px < x || py < y || px >= x + mask.width || py >= y + mask.height {
                return 0;
            }
            mask.alpha[((py - y) * mask.width + (px - x)) as usize] as u32
        };
        for (component, &value) in self.layout.components.iter().zip(&color.0) {
            let (ws, hs) = (component.w_sub, component.h_sub);
            let stride = self.strides[component.plane];
            let plane = &mut *self.planes[component.plane];
            for cy in (y0 >> hs)..=((y1 - 1) >> hs) {
                for cx in (x0 >> ws)..=((x1 - 1) >> ws) {
                    // The pixels this sample stands for, inside the frame.
                    let (px0, py0) = (cx << ws, cy << hs);
                    let (px1, py1) = (
                        ((cx + 1) << ws).min(self.layout.width),
                        ((cy + 1) << hs).min(self.layout.height),
                    );
                    let mut sum = 0;
                    for py in py0..py1 {
                        for px in px0..px1 {
                            sum += coverage(px, py);
                        }
                    }
                    let alpha = sum / ((px1 - px0) * (py1 - py0)) as u32;
                    if alpha == 0 {
                        continue;
                    }
                    let at = cy as usize * stride
                        + component.offset
                        + cx as usize * component.pixel_stride;
                    let old = plane[at] as u32;
                    plane[at] = ((old * (255 - alpha) + value as u32 * alpha + 127) / 255) as u8;
                }
            }
        }
    }
}

/// Horizontal distance between two characters: the glyph and one column of space.
pub fn text_advance(scale: i64) -> i64 {
    (font::WIDTH as i64 + 1) * scale
}

/// Width and height of `text` drawn at `scale`, without the trailing space.
pub fn text_size(scale: i64, text: &str) -> (i64, i64) {
    let n = text.chars().count() as i64;
    (
        (n * text_advance(scale) - scale).max(0),
        font::HEIGHT as i64 * scale,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i420(width: u32, height: u32) -> (Layout, gst_video::VideoInfo) {
        gst::init().unwrap();
        let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, height)
            .build()
            .unwrap();
        (Layout::new(&info).unwrap(), info)
    }

    #[test]
    fn bt601_limited_range_colours() {
        let (layout, _) = i420(16, 16);
        assert_eq!(layout.color(Rgb(255, 255, 255)).0[..3], [235, 128, 128]);
        assert_eq!(layout.color(Rgb(0, 0, 0)).0[..3], [16, 128, 128]);
        // Pure red in BT.601: Y 81, Cb 90, Cr 240.
        assert_eq!(layout.color(Rgb(255, 0, 0)).0[..3], [81, 90, 240]);
    }

    #[test]
    fn fill_clips_and_rounds_chroma_outwards() {
        let (layout, info) = i420(16, 8);
        let mut y = vec![0u8; 16 * 8];
        let mut u = vec![0u8; 8 * 4];
        let mut v = vec![0u8; 8 * 4];
        let strides = [16, 8, 8, 0];
        let color = Color([1, 2, 3, 255]);
        {
            let mut canvas = Canvas::new(&layout, [&mut y, &mut u, &mut v, &mut []], strides);
            canvas.fill(Rect::new(-5, 3, 8, 100), color);
        }
        assert_eq!(info.width(), 16);
        for row in 0..8 {
            for column in 0..16 {
                let want = if row >= 3 && column < 3 { 1 } else { 0 };
                assert_eq!(y[row * 16 + column], want, "{column},{row}");
            }
        }
        for row in 0..4 {
            for column in 0..8 {
                // Rows 3..8 and columns 0..3 touch chroma rows 1..4 and columns 0..2.
                let want = row >= 1 && column < 2;
                assert_eq!(u[row * 8 + column] == 2, want, "{column},{row}");
                assert_eq!(v[row * 8 + column] == 3, want, "{column},{row}");
            }
        }
    }
}
