//! The projector's chart: hits per minute over the last half hour, laid out as bars for
//! an inline SVG drawn on the server (no charting library, no script).

use serde::Serialize;

use crate::store::{MinuteHits, UnixTime};

/// Minutes the chart spans, the current one included.
pub const MINUTES: i64 = 30;

/// Drawing units of the SVG's view box; the page scales it to fit.
const WIDTH: f64 = 1200.0;
const HEIGHT: f64 = 400.0;
/// Room under the bars for the axis labels.
const AXIS: f64 = 56.0;
/// Space between neighbouring bars, as a share of a slot.
const GAP: f64 = 0.18;

/// One minute's bar, in view-box units.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Bar width.
    pub width: f64,
    /// Bar height; zero for a minute without hits.
    pub height: f64,
    /// Hits in the minute, for the bar's tooltip.
    pub hits: i64,
    /// Minutes before now (0 is the current minute).
    pub minutes_ago: i64,
}

/// The laid-out chart.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chart {
    /// View-box width.
    pub width: f64,
    /// View-box height.
    pub height: f64,
    /// Where the bars stand.
    pub baseline: f64,
    /// One bar per minute, oldest first.
    pub bars: Vec<Bar>,
    /// The busiest minute's hits: the scale's top.
    pub peak: i64,
    /// Hits in the whole span.
    pub total: i64,
}

/// The first minute the chart shows, for reading the store.
pub fn first_minute(now: UnixTime) -> UnixTime {
    minute_of(now) - (MINUTES - 1) * 60
}

/// Lays out `minutes` (any order, gaps allowed) as the bars ending at `now`'s minute.
pub fn layout(minutes: &[MinuteHits], now: UnixTime) -> Chart {
    let current = minute_of(now);
    let hits_at = |start: UnixTime| {
        minutes
            .iter()
            .filter(|m| m.minute == start)
            .map(|m| m.hits)
            .sum::<i64>()
    };
    let series: Vec<(i64, i64)> = (0..MINUTES)
        .rev()
        .map(|ago| (ago, hits_at(current - ago * 60)))
        .collect();
    let peak = series.iter().map(|(_, hits)| *hits).max().unwrap_or(0);

    let baseline = HEIGHT - AXIS;
    let slot = WIDTH / MINUTES as f64;
    let bars = series
        .iter()
        .enumerate()
        .map(|(index, &(minutes_ago, hits))| {
            let height = if peak == 0 {
                0.0
            } else {
                (hits as f64 / peak as f64) * (baseline - 8.0)
            };
            Bar {
                x: round(index as f64 * slot + slot * GAP / 2.0),
                y: round(baseline - height),
                width: round(slot * (1.0 - GAP)),
                height: round(height),
                hits,
                minutes_ago,
            }
        })
        .collect();

    Chart {
        width: WIDTH,
        height: HEIGHT,
        baseline,
        bars,
        peak,
        total: series.iter().map(|(_, hits)| hits).sum(),
    }
}

fn minute_of(time: UnixTime) -> UnixTime {
    time - time.rem_euclid(60)
}

/// Two decimals are plenty for pixels and keep the markup short.
fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: UnixTime = 1_800_000_030;

    fn at(minutes_ago: i64, hits: i64) -> MinuteHits {
        MinuteHits {
            minute: minute_of(NOW) - minutes_ago * 60,
            hits,
        }
    }

    #[test]
    fn there_is_one_bar_per_minute_with_the_current_minute_last() {
        let chart = layout(&[at(0, 4), at(29, 1)], NOW);

        assert_eq!(chart.bars.len(), MINUTES as usize);
        assert_eq!(chart.bars.last().unwrap().hits, 4);
        assert_eq!(chart.bars.last().unwrap().minutes_ago, 0);
        assert_eq!(chart.bars[0].hits, 1);
        assert_eq!(chart.total, 5);
    }

    #[test]
    fn the_busiest_minute_fills_the_height_and_others_scale_to_it() {
        let chart = layout(&[at(1, 10), at(2, 5)], NOW);

        let tallest = &chart.bars[MINUTES as usize - 2];
        let half = &chart.bars[MINUTES as usize - 3];
        assert_eq!(chart.peak, 10);
        assert!((tallest.height - 2.0 * half.height).abs() < 0.02);
        assert!((tallest.y + tallest.height - chart.baseline).abs() < 0.02);
    }

    #[test]
    fn minutes_older_than_the_span_are_left_out() {
        let chart = layout(&[at(30, 99), at(3, 2)], NOW);

        assert_eq!(chart.peak, 2);
        assert_eq!(chart.total, 2);
    }

    #[test]
    fn an_empty_room_draws_flat_bars() {
        let chart = layout(&[], NOW);

        assert!(chart.bars.iter().all(|bar| bar.height == 0.0));
        assert_eq!(chart.peak, 0);
    }

    #[test]
    fn the_first_minute_read_is_the_oldest_bar() {
        assert_eq!(first_minute(NOW), minute_of(NOW) - 29 * 60);
    }
}
