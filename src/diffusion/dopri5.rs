//! The adaptive Dormand-Prince 5(4) ODE solver, stepped as torchdiffeq's `dopri5` steps it: SiT's default ODE
//! sampler (`odeint(drift, x, linspace(0, 1, K), method="dopri5", atol=1e-6, rtol=1e-3)`).
//!
//! The state is small (the latents), so the solver runs on the host in f64 and asks for one drift evaluation (a DiT
//! forward and its read-back) at a time. What torchdiffeq does, and this does:
//! - the first step from two evaluations (`_select_initial_step`, order 4): with `scale = atol + rtol |y0|`,
//!   `d0 = ||y0 / scale||`, `d1 = ||f0 / scale||`, `h0 = 0.01 d0 / d1` (1e-6 when either is below 1e-5),
//!   `d2 = ||(f(t0 + h0, y0 + h0 f0) - f0) / scale|| / h0`, `h = min(100 h0, (0.01 / max(d1, d2))^(1/5))` (or
//!   `max(1e-6, 1e-3 h0)` when d1 and d2 are both at most 1e-15); `||.||` the RMS over every value;
//! - each step: six stages of the Dormand-Prince tableau (the first reuses the last step's final evaluation), the
//!   error estimate `dt * sum(c_error k)`, accepted when `||error / (atol + rtol max(|y0|, |y1|))|| <= 1`; the next
//!   step `dt * min(10, max(0.9 / ratio^(1/5), 0.2))` (no lower bound 0.2 once accepted; `dt * 10` at a zero ratio);
//! - steps are never shortened to land on the end: the value at `t_end` is the last step's quartic dense output.

use crate::error::{Error, Result};

const ALPHA: [f64; 6] = [1.0 / 5.0, 3.0 / 10.0, 4.0 / 5.0, 8.0 / 9.0, 1.0, 1.0];
const BETA: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0],
    &[9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0],
    &[35.0 / 384.0, 0.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0],
];
/// The fifth-order solution minus the embedded fourth-order one.
const C_ERROR: [f64; 7] = [
    35.0 / 384.0 - 1951.0 / 21600.0,
    0.0,
    500.0 / 1113.0 - 22642.0 / 50085.0,
    125.0 / 192.0 - 451.0 / 720.0,
    -2187.0 / 6784.0 + 12231.0 / 42400.0,
    11.0 / 84.0 - 649.0 / 6300.0,
    -1.0 / 60.0,
];
/// The weights of the midpoint value used by the dense output (Shampine's).
const C_MID: [f64; 7] = [
    6025192743.0 / 30085553152.0 / 2.0,
    0.0,
    51252292925.0 / 65400821598.0 / 2.0,
    -2691868925.0 / 45128329728.0 / 2.0,
    187940372067.0 / 1594534317056.0 / 2.0,
    -1776094331.0 / 19743644256.0 / 2.0,
    11237099.0 / 235043384.0 / 2.0,
];

/// SiT's tolerances for its default ODE sampler.
pub const SIT_ATOL: f64 = 1e-6;
pub const SIT_RTOL: f64 = 1e-3;
/// Step attempts after which a run that has not reached its end is an error (the step size collapsed).
pub const MAX_ATTEMPTS: usize = 10_000;

fn rms(v: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in v {
        sum += x * x;
        n += 1;
    }
    (sum / n.max(1) as f64).sqrt()
}

/// `y + dt * sum_j w_j k_j`.
fn combine(y: &[f64], dt: f64, w: &[f64], k: &[Vec<f64>]) -> Vec<f64> {
    let mut out = y.to_vec();
    for (wj, kj) in w.iter().zip(k) {
        if *wj != 0.0 {
            let c = dt * wj;
            out.iter_mut().zip(kj).for_each(|(o, k)| *o += c * k);
        }
    }
    out
}

/// The quartic through the last accepted step: value at `t0 + x (t1 - t0)` = `e + d x + c x^2 + b x^3 + a x^4`.
struct Dense {
    t0: f64,
    t1: f64,
    /// `[e, d, c, b, a]`.
    coef: [Vec<f64>; 5],
}

/// The solver's state between steps.
pub struct Dopri5 {
    /// The time of the current state (the end of the last accepted step).
    pub t: f64,
    y: Vec<f64>,
    /// The drift at (t, y).
    f: Vec<f64>,
    /// The size of the next step.
    pub dt: f64,
    atol: f64,
    rtol: f64,
    dense: Option<Dense>,
    /// Steps accepted and rejected so far, and drift evaluations (the first step's two included).
    pub accepted: usize,
    pub rejected: usize,
    pub evaluations: usize,
}

impl Dopri5 {
    /// Starts at (t0, y0): evaluates the drift there and picks the first step (two evaluations).
    pub async fn start(
        t0: f64,
        y0: Vec<f64>,
        atol: f64,
        rtol: f64,
        drift: &mut impl AsyncFnMut(f64, &[f64]) -> Result<Vec<f64>>,
    ) -> Result<Dopri5> {
        let f0 = drift(t0, &y0).await?;
        let scale: Vec<f64> = y0.iter().map(|y| atol + y.abs() * rtol).collect();
        let d0 = rms(y0.iter().zip(&scale).map(|(y, s)| y / s));
        let d1 = rms(f0.iter().zip(&scale).map(|(f, s)| f / s));
        let h0 = if d0 < 1e-5 || d1 < 1e-5 { 1e-6 } else { 0.01 * d0 / d1 };
        let y1: Vec<f64> = y0.iter().zip(&f0).map(|(y, f)| y + h0 * f).collect();
        let f1 = drift(t0 + h0, &y1).await?;
        let d2 = rms(f1.iter().zip(&f0).zip(&scale).map(|((a, b), s)| (a - b) / s)) / h0;
        let h1 = if d1 <= 1e-15 && d2 <= 1e-15 { (h0 * 1e-3).max(1e-6) } else { (0.01 / d1.max(d2)).powf(1.0 / 5.0) };
        let dt = (100.0 * h0).min(h1);
        Ok(Dopri5 { t: t0, y: y0, f: f0, dt, atol, rtol, dense: None, accepted: 0, rejected: 0, evaluations: 2 })
    }

    /// One step attempt from the current state (six evaluations); true when it was accepted.
    pub async fn attempt(&mut self, drift: &mut impl AsyncFnMut(f64, &[f64]) -> Result<Vec<f64>>) -> Result<bool> {
        if !(self.dt.is_finite() && self.dt > 0.0) {
            return Err(Error::input(format!(
                "dopri5: the step size became {} at t = {}; use euler or heun for this model",
                self.dt, self.t
            )));
        }
        let (t0, dt) = (self.t, self.dt);
        let t1 = t0 + dt;
        let mut k: Vec<Vec<f64>> = vec![self.f.clone()];
        for (i, (alpha, beta)) in ALPHA.iter().zip(BETA).enumerate() {
            let ti = if *alpha == 1.0 { t1 } else { t0 + alpha * dt };
            let yi = combine(&self.y, dt, beta, &k[..=i]);
            k.push(drift(ti, &yi).await?);
            self.evaluations += 1;
        }
        // The last stage's input is the fifth-order solution (its weights are the solution's: FSAL).
        let y1 = combine(&self.y, dt, BETA[5], &k[..6]);
        let err = combine(&vec![0.0; self.y.len()], dt, &C_ERROR, &k);
        let ratio = rms(err
            .iter()
            .zip(self.y.iter().zip(&y1))
            .map(|(e, (a, b))| e / (self.atol + self.rtol * a.abs().max(b.abs()))));
        if ratio.is_nan() {
            return Err(Error::input(format!(
                "dopri5: the model's velocity is not finite at t = {t0}; check the weights (dit inspect)"
            )));
        }
        let accept = ratio <= 1.0;
        if accept {
            let mid = combine(&self.y, dt, &C_MID, &k);
            let (y0, f0, f1) = (&self.y, &k[0], &k[6]);
            let n = y0.len();
            let mut coef = [vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n], vec![0.0; n]];
            for j in 0..n {
                let (y0, y1, ym, f0, f1) = (y0[j], y1[j], mid[j], f0[j], f1[j]);
                coef[4][j] = 2.0 * dt * (f1 - f0) - 8.0 * (y1 + y0) + 16.0 * ym;
                coef[3][j] = dt * (5.0 * f0 - 3.0 * f1) + 18.0 * y0 + 14.0 * y1 - 32.0 * ym;
                coef[2][j] = dt * (f1 - 4.0 * f0) - 11.0 * y0 - 5.0 * y1 + 16.0 * ym;
                coef[1][j] = dt * f0;
                coef[0][j] = y0;
            }
            self.dense = Some(Dense { t0, t1, coef });
            self.y = y1;
            self.f = k.pop().unwrap();
            self.t = t1;
            self.accepted += 1;
        } else {
            self.rejected += 1;
        }
        self.dt = dt
            * if ratio == 0.0 {
                10.0
            } else {
                let shrink = if ratio < 1.0 { 1.0 } else { 0.2 };
                (0.9 / ratio.powf(1.0 / 5.0)).max(shrink).min(10.0)
            };
        Ok(accept)
    }

    /// Steps until the state reaches `t_end` (or passes it), then the dense output at `t_end`. `on_attempt` runs
    /// after each attempt (false cancels).
    pub async fn solve_to(
        &mut self,
        t_end: f64,
        drift: &mut impl AsyncFnMut(f64, &[f64]) -> Result<Vec<f64>>,
        mut on_attempt: impl FnMut(&Dopri5) -> bool,
    ) -> Result<Vec<f64>> {
        while t_end > self.t {
            if self.accepted + self.rejected >= MAX_ATTEMPTS {
                return Err(Error::input(format!(
                    "dopri5 took {MAX_ATTEMPTS} steps without reaching t = {t_end} (it is at {}); use euler or heun",
                    self.t
                )));
            }
            self.attempt(drift).await?;
            if !on_attempt(self) {
                return Err(Error::Cancelled);
            }
        }
        Ok(self.at(t_end))
    }

    /// The dense output of the last accepted step at `t` (the current state before any step).
    pub fn at(&self, t: f64) -> Vec<f64> {
        let Some(d) = &self.dense else { return self.y.clone() };
        let x = (t - d.t0) / (d.t1 - d.t0);
        let mut out = d.coef[0].clone();
        let mut power = 1.0;
        for c in &d.coef[1..] {
            power *= x;
            out.iter_mut().zip(c).for_each(|(o, c)| *o += power * c);
        }
        out
    }

    /// The current state.
    pub fn state(&self) -> (&[f64], &[f64]) {
        (&self.y, &self.f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;

    // The drifts here never wait, so each run completes on its first poll.

    /// y' = -2 t y, y(0) = 1: y(1) = exp(-1), solved to about the tolerances asked, stepping adaptively.
    #[test]
    fn solves_a_known_ode_to_its_tolerance() {
        let mut calls = 0;
        let mut drift = async |t: f64, y: &[f64]| -> Result<Vec<f64>> {
            calls += 1;
            Ok(y.iter().map(|y| -2.0 * t * y).collect())
        };
        let got = async {
            let mut s = Dopri5::start(0.0, vec![1.0, 2.0], 1e-10, 1e-8, &mut drift).await.unwrap();
            let y = s.solve_to(1.0, &mut drift, |_| true).await.unwrap();
            assert!(s.accepted >= 2, "it stepped: {} accepted", s.accepted);
            assert!(s.t >= 1.0);
            y
        }
        .now_or_never()
        .unwrap();
        let want = (-1f64).exp();
        assert!((got[0] - want).abs() < 1e-7 && (got[1] - 2.0 * want).abs() < 2e-7, "{got:?} vs {want}");
        assert!(calls >= 8);
    }

    #[test]
    fn a_velocity_that_is_not_finite_is_an_error_not_a_hang() {
        let mut drift = async |_t: f64, y: &[f64]| -> Result<Vec<f64>> { Ok(y.iter().map(|_| f64::NAN).collect()) };
        let e = async {
            let mut s = Dopri5::start(0.0, vec![1.0], 1e-6, 1e-3, &mut drift).await.unwrap();
            s.solve_to(1.0, &mut drift, |_| true).await.unwrap_err()
        }
        .now_or_never()
        .unwrap();
        assert!(e.to_string().contains("dopri5"), "{e}");
    }
}
