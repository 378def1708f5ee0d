//! Label text. ASCII keeps the seed's 5×7 bitmap font; text the font cannot draw (names in
//! any script: "José", "王伟", "Дмитрий", "أحمد") is shaped by Pango (HarfBuzz: right-to-left,
//! combining marks, per-character font fallback through fontconfig) and rendered by cairo
//! into an 8-bit alpha mask, once per distinct (text, size, font), kept in a bounded
//! process-wide cache, and blended into the frame in its own format by
//! [`super::draw::Canvas::blend`]. So a label costs the same on every frame after its first,
//! and no frame is converted to RGB.

use std::sync::{Arc, LazyLock};

use super::draw::{self, Canvas, Color};

/// Fonts tried in order, per character: DejaVu for Latin, Greek, Cyrillic, Arabic and
/// Hebrew, Noto CJK for Chinese, Japanese and Korean (Debian's fonts-dejavu-core and
/// fonts-noto-cjk, which scripts/install-deps.sh installs); fontconfig falls back further.
pub const DEFAULT_FAMILIES: &str = "DejaVu Sans, Noto Sans CJK SC, sans-serif";

/// Bytes of masks the cache keeps, over all streams of the process.
const CACHE_BYTES: u64 = 16 << 20;

/// An 8-bit coverage mask: 0 leaves the frame, 255 is the text colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: i64,
    pub height: i64,
    /// Row-major, `width` bytes a row.
    pub alpha: Vec<u8>,
}

/// Text ready to measure and draw at one scale.
pub enum Label<'a> {
    /// Drawn with the 5×7 font, each font pixel `scale` × `scale`.
    Bitmap {
        text: &'a str,
        scale: i64,
    },
    Mask(Arc<Mask>),
}

impl Label<'_> {
    /// Width and height in frame pixels.
    pub fn size(&self) -> (i64, i64) {
        match self {
            Label::Bitmap { text, scale } => draw::text_size(*scale, text),
            Label::Mask(mask) => (mask.width, mask.height),
        }
    }

    /// Draws with the top-left corner at `x`, `y`.
    pub fn draw(&self, canvas: &mut Canvas, x: i64, y: i64, color: Color) {
        match self {
            Label::Bitmap { text, scale } => canvas.text(x, y, *scale, text, color),
            Label::Mask(mask) => canvas.blend(x, y, mask, color),
        }
    }
}

/// How labels are drawn: the bitmap font for what it can draw, unless a font is named.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fonts {
    /// Pango font families for every label; `None`: the bitmap font for ASCII and
    /// [`DEFAULT_FAMILIES`] for the rest.
    pub families: Option<String>,
}

impl Fonts {
    /// `text` at the bitmap font's `scale` (its glyphs are 7 × `scale` pixels high; rendered
    /// text gets the same cap height).
    pub fn label<'a>(&self, text: &'a str, scale: i64) -> Label<'a> {
        match &self.families {
            None if bitmap_can_draw(text) => Label::Bitmap { text, scale },
            families => Label::Mask(cached_mask(
                text,
                scale,
                families.as_deref().unwrap_or(DEFAULT_FAMILIES),
            )),
        }
    }
}

/// Whether every character has a glyph in the 5×7 font.
pub fn bitmap_can_draw(text: &str) -> bool {
    text.bytes().all(|b| (b' '..=b'~').contains(&b))
}

type Key = (String, i64, String);

#[derive(Clone)]
struct MaskWeight;

impl quick_cache::Weighter<Key, Arc<Mask>> for MaskWeight {
    fn weight(&self, key: &Key, mask: &Arc<Mask>) -> u64 {
        (key.0.len() + key.2.len() + mask.alpha.len()) as u64 + 64
    }
}

static MASKS: LazyLock<quick_cache::sync::Cache<Key, Arc<Mask>, MaskWeight>> =
    LazyLock::new(|| quick_cache::sync::Cache::with_weighter(4096, CACHE_BYTES, MaskWeight));

/// The mask of `text`, from the cache or rendered once.
fn cached_mask(text: &str, scale: i64, families: &str) -> Arc<Mask> {
    let key = (text.to_owned(), scale, families.to_owned());
    MASKS
        .get_or_insert_with(&key, || {
            Ok::<_, std::convert::Infallible>(Arc::new(render(text, scale, families)))
        })
        .unwrap_or_else(|never| match never {})
}

/// Renders `text` with Pango: the font's pixel size is chosen so that its capital letters
/// are as high as the bitmap font's (7 × `scale`); the mask spans the layout's logical
/// extents (line height, advance), so labels of different texts line up.
pub fn render(text: &str, scale: i64, families: &str) -> Mask {
    let mut font = pango::FontDescription::from_string(families);
    // Cap height is about 0.73 em for DejaVu Sans and Noto CJK.
    let em_px = (7 * scale) as f64 / 0.73;
    font.set_absolute_size(em_px * pango::SCALE as f64);
    // Measure on a throwaway surface, then render at the measured size.
    let layout_for = |context: &cairo::Context| {
        let layout = pangocairo::functions::create_layout(context);
        let mut options = cairo::FontOptions::new().expect("cairo font options");
        // Grey antialiasing and no hinting: the same coverage whatever the machine's
        // fontconfig says, so explain lines reproduce the server's bytes.
        options.set_antialias(cairo::Antialias::Gray);
        options.set_hint_style(cairo::HintStyle::None);
        options.set_hint_metrics(cairo::HintMetrics::Off);
        pangocairo::functions::context_set_font_options(&layout.context(), Some(&options));
        layout.context().changed();
        layout.set_font_description(Some(&font));
        layout.set_single_paragraph_mode(true);
        layout.set_text(text);
        layout
    };
    let probe = cairo::ImageSurface::create(cairo::Format::A8, 1, 1).expect("cairo surface");
    let (_, logical) =
        layout_for(&cairo::Context::new(&probe).expect("cairo context")).pixel_extents();
    let (width, height) = (logical.width().max(1), logical.height().max(1));
    let mut surface =
        cairo::ImageSurface::create(cairo::Format::A8, width, height).expect("cairo surface");
    {
        let context = cairo::Context::new(&surface).expect("cairo context");
        let layout = layout_for(&context);
        context.move_to(-logical.x() as f64, -logical.y() as f64);
        context.set_source_rgba(0., 0., 0., 1.);
        pangocairo::functions::show_layout(&context, &layout);
    }
    surface.flush();
    let stride = surface.stride() as usize;
    let data = surface.data().expect("the surface is ours alone");
    let alpha = data
        .chunks(stride)
        .take(height as usize)
        .flat_map(|row| &row[..width as usize])
        .copied()
        .collect();
    Mask {
        width: width.into(),
        height: height.into(),
        alpha,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ink_columns(mask: &Mask) -> usize {
        (0..mask.width as usize)
            .filter(|&x| {
                (0..mask.height as usize).any(|y| mask.alpha[y * mask.width as usize + x] > 128)
            })
            .count()
    }

    #[test]
    fn ascii_stays_bitmap_and_other_scripts_are_rendered() {
        let fonts = Fonts::default();
        assert!(matches!(fonts.label("#7 alice", 2), Label::Bitmap { .. }));
        for text in ["José Ramírez", "王伟", "Øyvind", "Дмитрий", "أحمد"] {
            let Label::Mask(mask) = fonts.label(text, 2) else {
                panic!("{text} needs a rendered mask");
            };
            assert!(ink_columns(&mask) > 4, "{text}: glyphs drawn");
            assert_eq!(mask.alpha.len() as i64, mask.width * mask.height);
        }
        // A named font renders ASCII too.
        let named = Fonts {
            families: Some("DejaVu Sans".into()),
        };
        assert!(matches!(named.label("#7 alice", 2), Label::Mask(_)));
    }

    #[test]
    fn glyphs_differ_from_question_marks_and_scale_with_the_frame() {
        let wang = render("王伟", 2, DEFAULT_FAMILIES);
        let unknown = render("??", 2, DEFAULT_FAMILIES);
        assert_ne!(wang.alpha, unknown.alpha);
        let big = render("王伟", 4, DEFAULT_FAMILIES);
        assert!(big.height >= 2 * wang.height - 2 && big.width >= 2 * wang.width - 2);
        // Rendering is deterministic: the explain line must reproduce the server's bytes.
        assert_eq!(
            render("José", 3, DEFAULT_FAMILIES),
            render("José", 3, DEFAULT_FAMILIES)
        );
    }

    #[test]
    fn right_to_left_text_is_shaped() {
        // Arabic letters join: the shaped word is narrower than its letters apart.
        let word = render("سلام", 3, DEFAULT_FAMILIES);
        let letters = render("س ل ا م", 3, DEFAULT_FAMILIES);
        assert!(
            word.width < letters.width,
            "{} < {}",
            word.width,
            letters.width
        );
        // A combining accent is drawn on its letter, not beside it.
        let composed = render("e\u{301}", 3, DEFAULT_FAMILIES);
        let precomposed = render("é", 3, DEFAULT_FAMILIES);
        assert_eq!(composed.width, precomposed.width);
    }

    #[test]
    fn the_cache_is_bounded() {
        for i in 0..3000 {
            cached_mask(&format!("名前 {i} {}", "x".repeat(40)), 3, DEFAULT_FAMILIES);
        }
        let bytes = MASKS.weight();
        assert!(bytes <= CACHE_BYTES, "{bytes} bytes cached");
    }
}
