//! Static assets compiled into the binary, so it runs from any folder.

use poem::http::{StatusCode, header};
use poem::web::Path;
use poem::{IntoResponse, Response, handler};

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    cache_control: &'static str,
    body: &'static [u8],
}

/// Versioned files never change under their name; the others are revalidated hourly.
const ASSETS: &[Asset] = &[
    Asset {
        name: "htmx-2.0.11.min.js",
        content_type: "text/javascript; charset=utf-8",
        cache_control: "public, max-age=31536000, immutable",
        body: include_bytes!("../../static/htmx-2.0.11.min.js"),
    },
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        cache_control: "public, max-age=3600",
        body: include_bytes!("../../static/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        cache_control: "public, max-age=3600",
        body: include_bytes!("../../static/app.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        cache_control: "public, max-age=86400",
        body: include_bytes!("../../static/favicon.svg"),
    },
    Asset {
        name: "htmx-LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        cache_control: "public, max-age=3600",
        body: include_bytes!("../../static/htmx-LICENSE.txt"),
    },
];

/// `GET /static/:name`.
#[handler]
pub async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    Response::builder()
        .content_type(asset.content_type)
        .header(header::CACHE_CONTROL, asset.cache_control)
        .body(asset.body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_static_is_served() {
        let on_disk = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/static")).unwrap();

        for entry in on_disk {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                ASSETS.iter().any(|asset| asset.name == name),
                "{name} is not embedded"
            );
        }
    }

    #[test]
    fn every_asset_a_template_names_is_embedded() {
        let templates =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")).unwrap();

        for entry in templates {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for reference in text.split("/static/").skip(1) {
                let name: String = reference.chars().take_while(|c| *c != '"').collect();
                assert!(
                    ASSETS.iter().any(|asset| asset.name == name),
                    "{name} is not embedded"
                );
            }
        }
    }
}
