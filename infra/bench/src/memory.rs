//! The memory model of issue 14 (AWS Lambda Power Tuning's method, on paper): each
//! function's duration and cost per request across Lambda memory sizes, from its CPU time
//! per request measured here (at a full core) and the time it waits on I/O.
//!
//! - Lambda allots CPU in proportion to memory, one full vCPU at 1,769 MB; more memory
//!   adds cores, which a request (one task, argon2id with p = 1) does not use. So the CPU
//!   part of a request takes `cpu × 1769 / memory` below 1,769 MB and `cpu` above.
//! - The I/O wait (DynamoDB, SNS, … round trips) does not scale with memory, but is billed
//!   at it: `duration = cpu × max(1, 1769 / memory) + io`.
//! - Cost per request: the duration rounded up to the millisecond × memory in GB × the
//!   price per GB-second, plus the price per request (arm64, `template.yaml`'s
//!   architecture).
//!
//! Chosen per function ([`choose`]): the size with the lowest modelled latency among those
//! whose cost per request is no higher than at 256 MB (the size every function had) —
//! with [`COST_TOLERANCE`] of slack, see there.

// Floats here are model arithmetic and timings for display; money never passes through
// this crate.
#![allow(clippy::float_arithmetic, clippy::cast_precision_loss)]

/// The sizes modelled (MB): Lambda's range up to 3,008 MB, with 1,769 MB (one full vCPU).
pub const SIZES: &[u32] = &[128, 256, 512, 768, 1024, 1536, 1769, 2048, 3008];

/// The memory at which a function has one full vCPU.
pub const FULL_CPU_MB: f64 = 1769.0;

/// The size compared against: what every function ran at before issue 14.
pub const BASELINE_MB: u32 = 256;

/// arm64 duration price, USD per GB-second (first pricing tier).
pub const PRICE_PER_GB_SECOND: f64 = 0.000_013_333_4;

/// USD per request.
pub const PRICE_PER_REQUEST: f64 = 0.000_000_2;

/// How much more than at 256 MB a size may cost per request and still count as "no
/// higher". See [`choose`].
pub const COST_TOLERANCE: f64 = 0.0;

/// A function's cost drivers: CPU time per request at a full core, and I/O wait.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub cpu_ms: f64,
    pub io_ms: f64,
}

impl Profile {
    /// Modelled wall time of one request at `memory_mb`.
    pub fn duration_ms(self, memory_mb: u32) -> f64 {
        self.cpu_ms * (FULL_CPU_MB / f64::from(memory_mb)).max(1.0) + self.io_ms
    }

    /// Modelled cost of one request at `memory_mb`, USD.
    pub fn cost(self, memory_mb: u32) -> f64 {
        let billed_seconds = self.duration_ms(memory_mb).ceil() / 1000.0;
        billed_seconds * f64::from(memory_mb) / 1024.0 * PRICE_PER_GB_SECOND + PRICE_PER_REQUEST
    }
}

/// The size with the lowest modelled latency among those costing no more than
/// [`BASELINE_MB`] (plus [`COST_TOLERANCE`]); ties go to the cheaper size.
pub fn choose(profile: Profile) -> u32 {
    let ceiling = profile.cost(BASELINE_MB) * (1.0 + COST_TOLERANCE) * (1.0 + 1e-12);
    let mut best = BASELINE_MB;
    for &size in SIZES {
        if profile.cost(size) > ceiling {
            continue;
        }
        let (d, best_d) = (profile.duration_ms(size), profile.duration_ms(best));
        if d < best_d || (d == best_d && profile.cost(size) < profile.cost(best)) {
            best = size;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_bound_work_costs_the_same_below_one_vcpu_and_io_is_billed_at_the_size() {
        let cpu_only = Profile {
            cpu_ms: 10.0,
            io_ms: 0.0,
        };
        assert!((cpu_only.duration_ms(256) - 10.0 * 1769.0 / 256.0).abs() < 1e-9);
        assert!((cpu_only.duration_ms(3008) - 10.0).abs() < 1e-9);
        assert_eq!(choose(cpu_only), 1769);
        let io_only = Profile {
            cpu_ms: 0.0,
            io_ms: 10.0,
        };
        // Waiting takes as long at any size, and is billed at the size: the smallest wins.
        assert_eq!(choose(io_only), 128, "more memory only costs more");
    }
}
