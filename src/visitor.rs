//! Visitor identity: a random id carried in an HMAC-signed cookie.
//!
//! Anything that is not a well-formed id with a valid signature (a missing, garbled,
//! oversized or forged cookie) makes a new visitor; it is never an error.

use std::fmt;
use std::time::Duration;

use poem::web::cookie::{Cookie, CookieJar, CookieKey, SameSite};

/// Name of the visitor cookie.
pub const COOKIE_NAME: &str = "hc_visitor";

/// How long a browser keeps the cookie after the last counted visit.
pub const COOKIE_MAX_AGE: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// Longest cookie value looked at; a signed id is far shorter.
const MAX_COOKIE_LEN: usize = 256;

/// Random bytes in an id.
const ID_BYTES: usize = 16;

/// A visitor's id: 32 lowercase hex digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VisitorId(String);

impl VisitorId {
    /// A new random id.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0_u8; ID_BYTES];
        getrandom::fill(&mut bytes)?;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = String::with_capacity(ID_BYTES * 2);
        for byte in bytes {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        Ok(Self(text))
    }

    /// Accepts exactly the form [`VisitorId::generate`] makes.
    pub fn parse(text: &str) -> Option<Self> {
        let well_formed = text.len() == ID_BYTES * 2
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| Self(text.to_owned()))
    }

    /// The id as stored in the database.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for VisitorId {
    /// Only a prefix: enough to follow one visitor through the log, not to be them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VisitorId({}…)", &self.0[..8])
    }
}

/// The visitor named by a validly signed cookie, if there is one.
pub fn identify(jar: &CookieJar, key: &CookieKey) -> Option<VisitorId> {
    let raw = jar.get(COOKIE_NAME)?;
    if raw.value_str().len() > MAX_COOKIE_LEN {
        return None;
    }
    let verified = jar.signed_with_key(key).get(COOKIE_NAME)?;
    VisitorId::parse(verified.value_str())
}

/// Sets (or refreshes) the signed visitor cookie. `secure` marks it HTTPS-only.
pub fn remember(jar: &CookieJar, key: &CookieKey, id: &VisitorId, secure: bool) {
    let mut cookie = Cookie::new_with_str(COOKIE_NAME, id.as_str());
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_max_age(COOKIE_MAX_AGE);
    cookie.set_secure(secure);
    jar.signed_with_key(key).add(cookie);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> CookieKey {
        CookieKey::derive_from(&[42_u8; 32])
    }

    /// Sets the cookie in one jar and returns the `Cookie` header a browser would send.
    fn issued_cookie_header(id: &VisitorId, signing_key: &CookieKey) -> String {
        let jar = CookieJar::default();
        remember(&jar, signing_key, id, false);
        let cookie = jar.get(COOKIE_NAME).expect("cookie was set");
        format!("{COOKIE_NAME}={}", cookie.value_str())
    }

    fn jar_from(header: &str) -> CookieJar {
        header.parse().expect("a cookie jar parses from any header")
    }

    #[test]
    fn generated_ids_are_well_formed_and_distinct() {
        let a = VisitorId::generate().unwrap();
        let b = VisitorId::generate().unwrap();

        assert_eq!(VisitorId::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for text in [
            "",
            "abc",
            &"g".repeat(32),
            &"A".repeat(32),
            &"a".repeat(33),
            "<script>",
        ] {
            assert_eq!(VisitorId::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn a_signed_cookie_names_its_visitor() {
        let id = VisitorId::generate().unwrap();
        let header = issued_cookie_header(&id, &key());

        assert_eq!(identify(&jar_from(&header), &key()), Some(id));
    }

    #[test]
    fn a_cookie_signed_with_another_key_is_not_accepted() {
        let id = VisitorId::generate().unwrap();
        let header = issued_cookie_header(&id, &CookieKey::derive_from(&[1_u8; 32]));

        assert_eq!(identify(&jar_from(&header), &key()), None);
    }

    #[test]
    fn a_tampered_cookie_is_not_accepted() {
        let id = VisitorId::generate().unwrap();
        let header = issued_cookie_header(&id, &key());
        let last = header.chars().last().unwrap();
        let swapped = if last == '0' { '1' } else { '0' };
        let tampered = format!("{}{swapped}", &header[..header.len() - 1]);

        assert_eq!(identify(&jar_from(&tampered), &key()), None);
    }

    #[test]
    fn unsigned_oversized_and_garbage_cookies_are_not_accepted() {
        let id = VisitorId::generate().unwrap();
        let oversized = format!("{COOKIE_NAME}={}", "a".repeat(4096));
        let unsigned = format!("{COOKIE_NAME}={}", id.as_str());

        for header in [
            unsigned.as_str(),
            &oversized,
            "hc_visitor=%%%;;==",
            "other=1",
        ] {
            assert_eq!(identify(&jar_from(header), &key()), None, "{header}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_long_lived() {
        let jar = CookieJar::default();
        let id = VisitorId::generate().unwrap();

        remember(&jar, &key(), &id, true);

        let cookie = jar.get(COOKIE_NAME).unwrap();
        assert!(cookie.http_only());
        assert!(cookie.secure());
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(cookie.max_age(), Some(COOKIE_MAX_AGE));
    }

    #[test]
    fn the_debug_form_shows_only_a_prefix() {
        let id = VisitorId::parse("0123456789abcdef0123456789abcdef").unwrap();

        assert_eq!(format!("{id:?}"), "VisitorId(01234567…)");
    }
}
