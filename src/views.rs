//! Pages and htmx fragments: MiniJinja templates compiled into the binary.
//!
//! Every template is autoescaped (their names end in `.html`). A fragment is its own
//! template, and the page that shows it includes it, so no markup exists twice.

use minijinja::{Environment, Value, context};
use serde::Serialize;

use crate::chart::Chart;
use crate::store::{Counts, Totals, UnixTime};

/// The templates, by name, as compiled in.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("index.html", include_str!("../templates/index.html")),
    ("counter.html", include_str!("../templates/counter.html")),
    ("error.html", include_str!("../templates/error.html")),
    ("present.html", include_str!("../templates/present.html")),
    ("room.html", include_str!("../templates/room.html")),
];

/// The loaded templates.
pub struct Views {
    env: Environment<'static>,
}

/// What the counter fragment shows, and how it asks for fresh numbers.
#[derive(Debug, Serialize)]
pub struct CounterView {
    /// The numbers.
    pub counts: Counts,
    /// Names these numbers; a poll that sends it back gets 204 while they still hold.
    pub version: String,
    /// Seconds between polls.
    pub poll_seconds: u64,
}

impl CounterView {
    /// The view of `counts`, polling every `poll_seconds`.
    pub fn new(counts: Counts, poll_seconds: u64) -> Self {
        Self {
            version: version_of(&counts),
            counts,
            poll_seconds,
        }
    }
}

/// A compact name for a set of numbers: equal numbers, equal version.
pub fn version_of(counts: &Counts) -> String {
    let Counts { visitor, totals } = counts;
    format!(
        "{visitor}.{}.{}.{}",
        totals.hits, totals.visitors, totals.active
    )
}

/// What the projector's live region shows: the room's numbers and the chart.
#[derive(Debug, Serialize)]
pub struct RoomView {
    /// The room's numbers.
    pub totals: Totals,
    /// Hits per minute.
    pub chart: Chart,
    /// Names what is shown; the chart moves on each minute even without hits.
    pub version: String,
    /// Seconds between polls.
    pub poll_seconds: u64,
}

impl RoomView {
    /// The view of `totals` and `chart` at `now`, polling every `poll_seconds`.
    pub fn new(totals: Totals, chart: Chart, now: UnixTime, poll_seconds: u64) -> Self {
        Self {
            version: room_version(&totals, now),
            totals,
            chart,
            poll_seconds,
        }
    }
}

/// The version of the projector's numbers at `now`.
pub fn room_version(totals: &Totals, now: UnixTime) -> String {
    let minute = now.div_euclid(60);
    format!(
        "{}.{}.{}.{minute}",
        totals.hits, totals.visitors, totals.active
    )
}

/// What the projector page shows around its live region.
#[derive(Debug, Serialize)]
pub struct PresentView<'a> {
    /// The URL phones should open.
    pub join_url: &'a str,
    /// This machine's LAN address, when it replaced a loopback host in the join URL.
    pub lan_address: Option<String>,
}

impl Views {
    /// Parses every template; a syntax error stops start-up.
    pub fn new() -> Result<Self, minijinja::Error> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// The visitor's page.
    pub fn index(&self, counter: &CounterView) -> Result<String, minijinja::Error> {
        self.render("index.html", context! { counter })
    }

    /// The counter fragment alone, for htmx.
    pub fn counter(&self, counter: &CounterView) -> Result<String, minijinja::Error> {
        self.render("counter.html", context! { counter })
    }

    /// The projector page.
    pub fn present(
        &self,
        page: &PresentView<'_>,
        room: &RoomView,
    ) -> Result<String, minijinja::Error> {
        self.render(
            "present.html",
            context! { join_url => page.join_url, lan_address => page.lan_address, room },
        )
    }

    /// The projector's live region alone, for htmx.
    pub fn room(&self, room: &RoomView) -> Result<String, minijinja::Error> {
        self.render("room.html", context! { room })
    }

    /// A short page for a failed request; `message` must not carry error details.
    pub fn error(
        &self,
        status: u16,
        title: &str,
        message: &str,
    ) -> Result<String, minijinja::Error> {
        self.render("error.html", context! { status, title, message })
    }

    fn render(&self, name: &str, ctx: Value) -> Result<String, minijinja::Error> {
        self.env.get_template(name)?.render(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Totals;

    fn sample() -> CounterView {
        let counts = Counts {
            visitor: 3,
            totals: Totals {
                hits: 120,
                visitors: 40,
                active: 12,
            },
        };
        CounterView::new(counts, 2)
    }

    #[test]
    fn every_template_parses() {
        assert!(Views::new().is_ok());
    }

    #[test]
    fn the_page_includes_the_fragment_with_every_number_id() {
        let views = Views::new().unwrap();

        let page = views.index(&sample()).unwrap();
        let fragment = views.counter(&sample()).unwrap();

        assert!(
            page.contains(fragment.trim()),
            "the page embeds the fragment as is"
        );
        for id in [
            "visitor-hits",
            "total-hits",
            "total-visitors",
            "active-visitors",
        ] {
            assert!(fragment.contains(&format!("id=\"{id}\"")), "missing {id}");
        }
    }

    #[test]
    fn the_fragment_polls_with_its_version_and_interval() {
        let fragment = Views::new().unwrap().counter(&sample()).unwrap();

        assert!(
            fragment.contains("hx-get=\"/counter?v=3.120.40.12\""),
            "{fragment}"
        );
        assert!(fragment.contains("every 2s"), "{fragment}");
    }

    #[test]
    fn the_projector_page_escapes_the_join_url_and_shows_the_chart() {
        let views = Views::new().unwrap();
        let room = RoomView::new(Totals::default(), crate::chart::layout(&[], 0), 0, 2);
        let page = PresentView {
            join_url: "https://example.org/?q=<script>",
            lan_address: None,
        };

        let html = views.present(&page, &room).unwrap();

        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("id=\"chart\""));
        assert!(
            html.contains("url=https%3A"),
            "the join URL is passed on percent-encoded"
        );
        assert!(html.contains("%3Fq%3D%3Cscript%3E"), "{html}");
    }

    #[test]
    fn error_pages_escape_what_they_show() {
        let page = Views::new()
            .unwrap()
            .error(400, "Bad <b>", "<script>x</script>")
            .unwrap();

        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;"));
    }
}
