//! Figures over repeated rounds: the median, with the smallest and largest beside it, so a
//! table shows both the typical value and how much it moved (a noisy nested host moves a
//! lot; one round proves little).

use serde::Serialize;

/// A figure measured in several rounds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// The median (the mean of the middle two for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// Rounds that gave a value.
    pub rounds: usize,
}

impl Spread {
    /// The spread of `values`; `None` if there are none (or only NaNs).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { median, min: v[0], max: v[n - 1], rounds: n })
    }

    /// `max / min`: 1.0 for a figure that did not move; `None` if `min` is not positive.
    pub fn max_over_min(&self) -> Option<f64> {
        (self.min > 0.0).then(|| self.max / self.min)
    }

    /// `"123 [110-150]"` with `decimals` digits after the point (the range left out for a
    /// single round).
    pub fn show(&self, decimals: usize) -> String {
        if self.rounds == 1 {
            return format!("{:.*}", decimals, self.median);
        }
        format!("{:.*} [{:.*}-{:.*}]", decimals, self.median, decimals, self.min, decimals, self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_ranges() {
        let s = Spread::of([5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.rounds), (3.0, 1.0, 5.0, 3));
        assert_eq!(s.max_over_min(), Some(5.0));
        assert_eq!(s.show(1), "3.0 [1.0-5.0]");
        let even = Spread::of([4.0, 1.0, 2.0, 10.0]).unwrap();
        assert_eq!(even.median, 3.0);
        assert_eq!(Spread::of([7.0]).unwrap().show(0), "7");
        assert_eq!(Spread::of([f64::NAN]), None);
        assert_eq!(Spread::of(Vec::new()), None);
        assert_eq!(Spread::of([0.0, 2.0]).unwrap().max_over_min(), None);
    }
}
