//! Mixing for the MCU: per receiver an N-1 mix (everyone but itself) of the loudest speakers,
//! with a soft limiter instead of wrap-around clipping. Receivers who are not among the mixed
//! speakers all hear the same mix, so one encode can serve all of them.

/// A soft limiter on an i32 sum of i16 samples: linear up to `knee` of full scale, then a
/// smooth curve that approaches (and never exceeds) full scale. Never wraps around.
#[derive(Debug, Clone, Copy)]
pub struct Limiter {
    knee: f32,
}

impl Default for Limiter {
    fn default() -> Self {
        Limiter { knee: 0.8 }
    }
}

impl Limiter {
    pub fn new(knee: f32) -> Self {
        assert!((0.1..1.0).contains(&knee), "knee must be within (0.1, 1.0)");
        Limiter { knee }
    }

    pub fn apply(&self, sum: i32) -> i16 {
        let x = sum as f32 / 32768.0;
        let a = x.abs();
        let y = if a <= self.knee {
            a
        } else {
            let room = 1.0 - self.knee;
            self.knee + room * ((a - self.knee) / room).tanh()
        };
        (y.copysign(x) * 32767.0).round() as i16
    }
}

/// Audio level of a frame as RFC 6464 reports it: 0 (loudest) to 127 dBov below full scale.
pub fn level_dbov(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 0.0 {
        return 127;
    }
    (-20.0 * rms.log10()).clamp(0.0, 127.0) as u8
}

/// Energy of one frequency in 48 kHz samples, per sample (the Goertzel algorithm): how loud a
/// tone at `hz` is in a signal.
pub fn tone_energy(samples: &[i16], hz: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let w = 2.0 * std::f64::consts::PI * hz / 48_000.0;
    let c = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &x in samples {
        let s = f64::from(x) + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    (s1 * s1 + s2 * s2 - c * s1 * s2) / samples.len() as f64
}

/// One participant's decoded frame for this tick.
#[derive(Debug, Clone)]
pub struct Input<'a, Id> {
    pub id: Id,
    pub samples: &'a [i16],
    /// 0 loudest .. 127 silent (from [`level_dbov`]).
    pub level: u8,
}

/// The mixes of one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mixes<Id> {
    /// Everyone's mix of the chosen speakers: for every receiver that is not a speaker.
    pub shared: Vec<i16>,
    /// Each chosen speaker's N-1 mix (the speakers but itself).
    pub minus: Vec<(Id, Vec<i16>)>,
}

/// Mixes one tick: picks at most `max_speakers` loudest inputs louder than `silence_dbov`
/// (RFC 6464 value: larger is quieter), sums them once in i32, and derives each speaker's
/// N-1 mix by subtracting its own samples, then limits every output.
pub fn mix_tick<Id: Clone>(
    inputs: &[Input<'_, Id>],
    frame_len: usize,
    max_speakers: usize,
    silence_dbov: u8,
    limiter: &Limiter,
) -> Mixes<Id> {
    let mut order: Vec<&Input<'_, Id>> = inputs.iter().filter(|i| i.level < silence_dbov).collect();
    order.sort_by_key(|i| i.level);
    order.truncate(max_speakers);
    let mut total = vec![0i32; frame_len];
    for s in &order {
        for (t, &x) in total.iter_mut().zip(s.samples) {
            *t += i32::from(x);
        }
    }
    let shared = total.iter().map(|&t| limiter.apply(t)).collect();
    let minus = order
        .iter()
        .map(|s| {
            let mut own = s.samples.iter();
            let out = total
                .iter()
                .map(|&t| limiter.apply(t - i32::from(own.next().copied().unwrap_or(0))))
                .collect();
            (s.id.clone(), out)
        })
        .collect();
    Mixes { shared, minus }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(id: &'static str, samples: &'a [i16], level: u8) -> Input<'a, &'static str> {
        Input { id, samples, level }
    }

    #[test]
    fn limiter_is_linear_below_the_knee_and_never_wraps() {
        let l = Limiter::default();
        assert_eq!(l.apply(1000), 1000);
        assert_eq!(l.apply(-1000), -1000);
        for sum in [40_000, 100_000, 1_000_000, i32::from(i16::MAX) * 8] {
            let y = l.apply(sum);
            assert!(y > 26_000, "{sum} -> {y}");
            assert_eq!(l.apply(-sum), -y, "symmetric");
        }
        // Monotonic: a louder sum is never quieter out.
        let mut last = i16::MIN;
        for sum in (-200_000..200_000).step_by(997) {
            let y = l.apply(sum);
            assert!(y >= last, "{sum}");
            last = y;
        }
    }

    #[test]
    fn each_speaker_hears_the_others_and_not_itself() {
        let l = Limiter::default();
        let (a, b, c) = ([100i16; 4], [20i16; 4], [3i16; 4]);
        let inputs = [input("a", &a, 10), input("b", &b, 20), input("c", &c, 30)];
        let m = mix_tick(&inputs, 4, 3, 100, &l);
        assert_eq!(m.shared, vec![123; 4]);
        let get = |id| m.minus.iter().find(|(i, _)| *i == id).unwrap().1.clone();
        assert_eq!(get("a"), vec![23; 4]);
        assert_eq!(get("b"), vec![103; 4]);
        assert_eq!(get("c"), vec![120; 4]);
    }

    #[test]
    fn only_the_loudest_are_mixed_and_silence_is_left_out() {
        let l = Limiter::default();
        let loud = [1000i16; 2];
        let mid = [100i16; 2];
        let quiet = [10i16; 2];
        let inputs = [
            input("quiet", &quiet, 60),
            input("loud", &loud, 5),
            input("mid", &mid, 30),
            input("silent", &quiet, 127),
        ];
        let m = mix_tick(&inputs, 2, 2, 100, &l);
        let ids: Vec<_> = m.minus.iter().map(|(i, _)| *i).collect();
        assert_eq!(ids, vec!["loud", "mid"], "the two loudest, loudest first");
        assert_eq!(m.shared, vec![1100; 2], "non-speakers hear both speakers");
        let m = mix_tick(&[input("silent", &quiet, 127)], 2, 3, 100, &l);
        assert_eq!(m.shared, vec![0; 2]);
        assert!(m.minus.is_empty());
    }

    #[test]
    fn loud_sums_are_limited_not_wrapped() {
        let l = Limiter::default();
        let s = [30_000i16; 2];
        let inputs = [input("a", &s, 1), input("b", &s, 1), input("c", &s, 1)];
        let m = mix_tick(&inputs, 2, 3, 100, &l);
        assert!(m.shared.iter().all(|&x| x > 30_000), "{:?}", m.shared);
    }

    #[test]
    fn levels() {
        assert_eq!(level_dbov(&[0; 960]), 127);
        assert_eq!(level_dbov(&[]), 127);
        let full: Vec<i16> = (0..960)
            .map(|i| if i % 2 == 0 { 32767 } else { -32767 })
            .collect();
        assert_eq!(level_dbov(&full), 0);
        let quiet: Vec<i16> = (0..960)
            .map(|i| if i % 2 == 0 { 328 } else { -328 })
            .collect();
        assert_eq!(level_dbov(&quiet), 39);
    }
}
