//! QR codes of the join URL, rendered in-process to PNG and kept in a small cache.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use image::codecs::png::PngEncoder;
use image::{GrayImage, Luma};
use qrcode::{Color, EcLevel, QrCode};

use crate::join_url::JoinUrl;

/// The smallest image side served, in pixels; smaller codes are hard to scan from a screen.
pub const MIN_SIZE: u32 = 128;
/// The largest image side served, in pixels; it bounds the memory and time one request costs.
pub const MAX_SIZE: u32 = 1024;
/// The image side used when the request does not ask for one.
pub const DEFAULT_SIZE: u32 = 512;

/// The white border around the code, in modules, as the QR specification requires.
const QUIET_ZONE: u32 = 4;

/// Changes whenever the rendering changes, so that browsers do not keep an old image for the
/// same URL and size.
const RENDER_VERSION: &str = "qr-render-1";

const BLACK: Luma<u8> = Luma([0]);
const WHITE: Luma<u8> = Luma([255]);

/// Why a QR code could not be made, or why a requested size was refused.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    /// The `size` parameter is present but empty.
    #[error("the size must not be empty")]
    EmptySize,
    /// The `size` parameter is not a whole number of pixels.
    #[error("the size must be a whole number of pixels")]
    SizeNotANumber,
    /// The `size` parameter is a number too large to read.
    #[error("the size is far too large; the largest is 1024 pixels")]
    SizeOverflow,
    /// The URL holds more data than a QR code can.
    #[error("the URL is too long to fit in a QR code")]
    Encode(#[source] qrcode::types::QrError),
    /// The image could not be written as PNG.
    #[error("the QR code image could not be written as PNG")]
    Png(#[source] image::ImageError),
}

/// Reads the `size` query parameter: absent gives [`DEFAULT_SIZE`], a number is clamped into
/// [`MIN_SIZE`]..=[`MAX_SIZE`], anything else is an error to answer with 400.
pub fn parse_size(raw: Option<&str>) -> Result<u32, QrError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_SIZE);
    };
    if raw.is_empty() {
        return Err(QrError::EmptySize);
    }
    // Digits only: `u32::from_str` would also take a leading `+`, which no form sends.
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QrError::SizeNotANumber);
    }
    let size: u32 = raw.parse().map_err(|_| QrError::SizeOverflow)?;
    Ok(size.clamp(MIN_SIZE, MAX_SIZE))
}

/// Renders `url` as a PNG QR code: black modules on white, error correction level M, a quiet
/// zone of at least four modules, each module a whole number of pixels.
///
/// `size` is clamped into [`MIN_SIZE`]..=[`MAX_SIZE`] and the image is exactly that many
/// pixels square: the largest whole module size that fits is used and the rest is white
/// border, split evenly around the code. Whole-pixel modules keep edges sharp, which matters
/// more to a phone camera than filling every pixel. The one exception: a code too dense to fit
/// at one pixel per module (only a URL near the length limit at the smallest size) is drawn at
/// one pixel per module, and the image is then larger than asked rather than unreadable.
pub fn render_png(url: &JoinUrl, size: u32) -> Result<Vec<u8>, QrError> {
    let code =
        QrCode::with_error_correction_level(url.as_str(), EcLevel::M).map_err(QrError::Encode)?;
    let image = draw(&code, size.clamp(MIN_SIZE, MAX_SIZE));

    let mut png = Vec::new();
    image
        .write_with_encoder(PngEncoder::new(&mut png))
        .map_err(QrError::Png)?;
    Ok(png)
}

/// Paints the modules of `code` centred on a white square of side `size` (or larger, see
/// [`render_png`]).
fn draw(code: &QrCode, size: u32) -> GrayImage {
    // A QR code is at most 177 modules wide, so this conversion cannot fail in practice.
    let modules = u32::try_from(code.width()).unwrap_or(u32::MAX / 2);
    let with_quiet_zone = modules.saturating_add(2 * QUIET_ZONE);
    let scale = (size / with_quiet_zone).max(1);
    let side = size.max(with_quiet_zone);
    // The border on each side is at least QUIET_ZONE * scale because side >= scale * total.
    let offset = (side - scale * modules) / 2;

    let mut image = GrayImage::from_pixel(side, side, WHITE);
    if modules == 0 {
        return image;
    }
    let colors = code.to_colors();
    for (index, color) in colors.iter().enumerate() {
        if *color != Color::Dark {
            continue;
        }
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        let (mx, my) = (index % modules, index / modules);
        for dy in 0..scale {
            for dx in 0..scale {
                let (x, y) = (offset + mx * scale + dx, offset + my * scale + dy);
                if x < side && y < side {
                    image.put_pixel(x, y, BLACK);
                }
            }
        }
    }
    image
}

/// A rendered QR code, cheap to clone.
#[derive(Clone, Debug)]
pub struct QrImage {
    /// The PNG bytes, shared between all clones.
    pub png: Arc<[u8]>,
    /// A strong, quoted ETag for the HTTP response, e.g. `"qr-0123456789abcdef"`.
    pub etag: String,
}

/// A bounded, thread-safe cache of rendered QR codes, keyed by URL and size, least recently
/// used evicted first.
///
/// Synchronous on purpose: rendering takes milliseconds, so callers run
/// [`QrCache::get_or_render`] on a blocking thread.
#[derive(Debug)]
pub struct QrCache {
    capacity: usize,
    /// Most recently used at the back; a linear scan is fine for the handful of entries kept.
    entries: Mutex<VecDeque<(JoinUrl, u32, QrImage)>>,
}

impl QrCache {
    /// A cache holding at most `capacity` images; 0 turns caching off.
    pub fn new(capacity: usize) -> Self {
        QrCache {
            capacity,
            entries: Mutex::new(VecDeque::with_capacity(capacity)),
        }
    }

    /// The QR code of `url` at `size` (clamped as in [`render_png`]), from the cache or freshly
    /// rendered.
    pub fn get_or_render(&self, url: &JoinUrl, size: u32) -> Result<QrImage, QrError> {
        if let Some(hit) = self.cached(url, size) {
            return Ok(hit);
        }
        let size = size.clamp(MIN_SIZE, MAX_SIZE);

        // Rendered without holding the lock, so one slow render does not stall other sizes;
        // two threads may render the same image at once, which is harmless.
        let image = QrImage {
            png: render_png(url, size)?.into(),
            etag: etag(url, size),
        };
        self.insert(url, size, image.clone());
        Ok(image)
    }

    /// The QR code of `url` at `size` if it is cached: cheap enough to call on an async
    /// thread, unlike a render.
    pub fn cached(&self, url: &JoinUrl, size: u32) -> Option<QrImage> {
        let size = size.clamp(MIN_SIZE, MAX_SIZE);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let position = entries
            .iter()
            .position(|(u, s, _)| *s == size && u == url)?;
        let entry = entries.remove(position)?;
        let image = entry.2.clone();
        entries.push_back(entry);
        Some(image)
    }

    fn insert(&self, url: &JoinUrl, size: u32, image: QrImage) {
        if self.capacity == 0 {
            return;
        }
        // A panic elsewhere while holding the lock leaves the deque intact (every change here
        // is a single call), so a poisoned lock is safe to keep using.
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.iter().any(|(u, s, _)| *s == size && u == url) {
            return;
        }
        while entries.len() >= self.capacity {
            entries.pop_front();
        }
        entries.push_back((url.clone(), size, image));
    }
}

/// A strong ETag for `url` at `size`.
///
/// FNV-1a with its published constants, rather than std's `DefaultHasher`, whose output may
/// change between Rust releases: the tag stays the same across restarts and builds, so
/// browsers keep their copy after a redeploy until [`RENDER_VERSION`] changes.
fn etag(url: &JoinUrl, size: u32) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;

    let mut hash = OFFSET_BASIS;
    // The 0 separators keep ("ab", "c") and ("a", "bc") apart.
    let parts: [&[u8]; 5] = [
        RENDER_VERSION.as_bytes(),
        &[0],
        url.as_str().as_bytes(),
        &[0],
        &size.to_le_bytes(),
    ];
    for byte in parts.into_iter().flatten() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(PRIME);
    }
    format!("\"qr-{hash:016x}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(raw: &str) -> JoinUrl {
        JoinUrl::parse(raw).unwrap()
    }

    fn long_url() -> JoinUrl {
        let raw = format!("https://demo.example.com/join?room={}", "x7".repeat(132));
        let url = url(&raw);
        assert!((290..=310).contains(&url.as_str().len()));
        url
    }

    fn decode(png: &[u8]) -> (GrayImage, Vec<String>) {
        let image = image::load_from_memory(png).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(image.clone());
        let texts = prepared
            .detect_grids()
            .iter()
            .map(|grid| grid.decode().unwrap().1)
            .collect();
        (image, texts)
    }

    #[test]
    fn short_and_long_urls_decode_back_exactly_at_min_and_max_size() {
        for url in [url("http://192.168.1.20:8080/"), long_url()] {
            for size in [MIN_SIZE, MAX_SIZE] {
                let png = render_png(&url, size).unwrap();

                let (image, texts) = decode(&png);

                assert_eq!(image.dimensions(), (size, size), "{url} at {size}");
                assert_eq!(texts, vec![url.as_str().to_owned()], "{url} at {size}");
            }
        }
    }

    #[test]
    fn images_have_the_requested_size_for_sizes_that_do_not_divide_evenly() {
        let url = url("https://example.com/");
        for size in [MIN_SIZE, 129, 300, DEFAULT_SIZE, 777, MAX_SIZE] {
            let (image, texts) = decode(&render_png(&url, size).unwrap());
            assert_eq!(image.dimensions(), (size, size));
            assert_eq!(texts, vec!["https://example.com/".to_owned()]);
        }
    }

    #[test]
    fn sizes_outside_the_range_are_clamped_when_rendering() {
        let url = url("https://example.com/");
        let (small, _) = decode(&render_png(&url, 1).unwrap());
        let (large, _) = decode(&render_png(&url, 100_000).unwrap());
        assert_eq!(small.dimensions(), (MIN_SIZE, MIN_SIZE));
        assert_eq!(large.dimensions(), (MAX_SIZE, MAX_SIZE));
    }

    #[test]
    fn pixels_are_pure_black_or_white_and_the_quiet_zone_is_white() {
        for url in [url("https://example.com/"), long_url()] {
            for size in [MIN_SIZE, DEFAULT_SIZE] {
                let code = QrCode::with_error_correction_level(url.as_str(), EcLevel::M).unwrap();
                let modules = code.width() as u32;
                let scale = size / (modules + 2 * QUIET_ZONE);
                let border = QUIET_ZONE * scale;

                let (image, _) = decode(&render_png(&url, size).unwrap());

                assert!(scale >= 1);
                assert!(image.pixels().all(|p| *p == BLACK || *p == WHITE));
                for (x, y, pixel) in image.enumerate_pixels() {
                    let inside = |v: u32| v >= border && v < size - border;
                    if !(inside(x) && inside(y)) {
                        assert_eq!(*pixel, WHITE, "({x}, {y}) of {url} at {size}");
                    }
                }
                assert!(image.pixels().any(|p| *p == BLACK));
            }
        }
    }

    #[test]
    fn modules_are_whole_pixels_wide() {
        let url = url("https://example.com/");
        let code = QrCode::with_error_correction_level(url.as_str(), EcLevel::M).unwrap();
        let modules = code.width() as u32;
        let scale = DEFAULT_SIZE / (modules + 2 * QUIET_ZONE);
        let offset = (DEFAULT_SIZE - scale * modules) / 2;

        let (image, _) = decode(&render_png(&url, DEFAULT_SIZE).unwrap());

        // The top-left finder pattern starts with a dark run of 7 modules.
        let row: Vec<bool> = (0..DEFAULT_SIZE)
            .map(|x| *image.get_pixel(x, offset) == BLACK)
            .collect();
        assert!(!row[offset as usize - 1]);
        assert!(
            row[offset as usize..(offset + 7 * scale) as usize]
                .iter()
                .all(|b| *b)
        );
        assert!(!row[(offset + 7 * scale) as usize]);
    }

    #[test]
    fn a_url_at_the_length_limit_still_renders_and_decodes() {
        let prefix = "https://example.com/";
        let url = url(&format!("{prefix}{}", "a".repeat(1024 - prefix.len())));

        let (image, texts) = decode(&render_png(&url, MAX_SIZE).unwrap());

        assert_eq!(image.dimensions(), (MAX_SIZE, MAX_SIZE));
        assert_eq!(texts, vec![url.as_str().to_owned()]);
    }

    #[test]
    fn absent_size_gives_the_default() {
        assert_eq!(parse_size(None).unwrap(), DEFAULT_SIZE);
    }

    #[test]
    fn numeric_sizes_are_clamped_into_range() {
        let cases = [
            ("0", MIN_SIZE),
            ("1", MIN_SIZE),
            ("128", 128),
            ("300", 300),
            ("0512", 512),
            ("1024", 1024),
            ("1025", MAX_SIZE),
            ("4294967295", MAX_SIZE),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_size(Some(raw)).unwrap(), expected, "{raw}");
        }
    }

    #[test]
    fn non_numeric_sizes_are_errors_with_plain_messages() {
        assert!(matches!(parse_size(Some("")), Err(QrError::EmptySize)));
        for raw in ["abc", "-5", "+5", "12.5", " 512", "512px", "1e3", "٣"] {
            assert!(
                matches!(parse_size(Some(raw)), Err(QrError::SizeNotANumber)),
                "{raw}"
            );
        }
        assert!(matches!(
            parse_size(Some("4294967296")),
            Err(QrError::SizeOverflow)
        ));
        assert!(matches!(
            parse_size(Some(&"9".repeat(100))),
            Err(QrError::SizeOverflow)
        ));
        assert_eq!(
            QrError::SizeNotANumber.to_string(),
            "the size must be a whole number of pixels"
        );
    }

    #[test]
    fn the_cache_returns_the_same_image_for_a_repeated_request() {
        let cache = QrCache::new(4);
        let url = url("https://example.com/");

        let first = cache.get_or_render(&url, 256).unwrap();
        let second = cache.get_or_render(&url, 256).unwrap();

        assert!(Arc::ptr_eq(&first.png, &second.png));
        assert_eq!(first.etag, second.etag);
    }

    #[test]
    fn the_cache_gives_another_etag_for_another_size_or_url() {
        let cache = QrCache::new(4);
        let a = url("https://example.com/a");
        let b = url("https://example.com/b");

        let a256 = cache.get_or_render(&a, 256).unwrap();
        let a512 = cache.get_or_render(&a, 512).unwrap();
        let b256 = cache.get_or_render(&b, 256).unwrap();

        assert_ne!(a256.etag, a512.etag);
        assert_ne!(a256.etag, b256.etag);
        assert!(a256.etag.starts_with('"') && a256.etag.ends_with('"'));
    }

    #[test]
    fn sizes_that_clamp_to_the_same_value_share_one_entry() {
        let cache = QrCache::new(4);
        let url = url("https://example.com/");

        let huge = cache.get_or_render(&url, 5000).unwrap();
        let max = cache.get_or_render(&url, MAX_SIZE).unwrap();

        assert!(Arc::ptr_eq(&huge.png, &max.png));
    }

    #[test]
    fn the_cache_evicts_the_least_recently_used_image() {
        let cache = QrCache::new(2);
        let url = url("https://example.com/");
        let first = cache.get_or_render(&url, 200).unwrap();
        cache.get_or_render(&url, 300).unwrap();

        // Touching 200 makes 300 the oldest, so adding 400 evicts 300.
        cache.get_or_render(&url, 200).unwrap();
        cache.get_or_render(&url, 400).unwrap();
        let again = cache.get_or_render(&url, 200).unwrap();

        assert!(Arc::ptr_eq(&first.png, &again.png));
        assert_eq!(cache.entries.lock().unwrap().len(), 2);
        assert!(
            cache
                .entries
                .lock()
                .unwrap()
                .iter()
                .all(|(_, size, _)| *size != 300)
        );
    }

    #[test]
    fn a_cache_of_capacity_zero_still_renders() {
        let cache = QrCache::new(0);
        let url = url("https://example.com/");

        let first = cache.get_or_render(&url, 256).unwrap();
        let second = cache.get_or_render(&url, 256).unwrap();

        assert!(!Arc::ptr_eq(&first.png, &second.png));
        assert_eq!(first.etag, second.etag);
    }

    #[test]
    fn etags_are_stable_across_builds() {
        // Pinned so that a change of hash (which would needlessly bust browser caches after a
        // redeploy) is a deliberate one.
        let tag = etag(&url("https://example.com/"), 512);
        assert_eq!(tag, "\"qr-30d910a5e7e62cee\"");
    }
}
