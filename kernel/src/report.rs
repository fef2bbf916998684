//! The lines the kernel prints for machines: the mode report, benchmark results, and the
//! end-of-run marker. The host harness parses exactly these formats.
//!
//! - `MODE hypervisor=… mode=… irq=… eoi=… clock=… timer=… nic=…`
//! - `BENCH {"name":…,"mode":…,"unit":…,"value":…,"iterations":…}`
//! - `DONE`

use core::fmt;

/// The mode report: what the platform chose for each trait.
#[derive(Clone, Copy, Debug)]
pub struct ModeReport<'a> {
    /// `none`, `xen-4.17`, `kvm`, …
    pub hypervisor: &'a str,
    /// The mode in use.
    pub mode: &'a str,
    /// Interrupt delivery.
    pub irq: &'a str,
    /// End-of-interrupt mechanism.
    pub eoi: &'a str,
    /// Clock.
    pub clock: &'a str,
    /// Timer.
    pub timer: &'a str,
    /// Network device, or `none`.
    pub nic: &'a str,
}

impl fmt::Display for ModeReport<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "MODE hypervisor={} mode={} irq={} eoi={} clock={} timer={} nic={}",
            self.hypervisor, self.mode, self.irq, self.eoi, self.clock, self.timer, self.nic
        )
    }
}

/// One benchmark result.
#[derive(Clone, Copy, Debug)]
pub struct BenchRecord<'a> {
    /// Benchmark name, e.g. `interrupt` or `mem_lat_64k`.
    pub name: &'a str,
    /// Mode it ran in.
    pub mode: &'a str,
    /// Unit of `value`: `ns`, `MB/s`, `Mbit/s`, …
    pub unit: &'a str,
    /// The measurement (mean per operation, or a rate).
    pub value: f64,
    /// Operations measured.
    pub iterations: u64,
}

struct JsonStr<'a>(&'a str);

impl fmt::Display for JsonStr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

impl fmt::Display for BenchRecord<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // JSON has no NaN or infinity; a broken measurement shows as 0, which the host
        // rejects as non-positive.
        let value = if self.value.is_finite() { self.value } else { 0.0 };
        write!(
            f,
            "BENCH {{\"name\":{},\"mode\":{},\"unit\":{},\"value\":{:.3},\"iterations\":{}}}",
            JsonStr(self.name),
            JsonStr(self.mode),
            JsonStr(self.unit),
            value,
            self.iterations
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_line() {
        let r = BenchRecord { name: "interrupt", mode: "hvm", unit: "ns", value: 1234.5678, iterations: 10000 };
        assert_eq!(
            r.to_string(),
            r#"BENCH {"name":"interrupt","mode":"hvm","unit":"ns","value":1234.568,"iterations":10000}"#
        );
    }

    #[test]
    fn escapes_and_non_finite() {
        let r = BenchRecord { name: "a\"b\\c\n", mode: "hvm", unit: "ns", value: f64::NAN, iterations: 1 };
        assert_eq!(
            r.to_string(),
            r#"BENCH {"name":"a\"b\\c\u000a","mode":"hvm","unit":"ns","value":0.000,"iterations":1}"#
        );
    }

    #[test]
    fn mode_line() {
        let m = ModeReport {
            hypervisor: "none",
            mode: "hvm",
            irq: "x2apic",
            eoi: "x2apic-msr",
            clock: "tsc",
            timer: "tsc-deadline",
            nic: "virtio-net",
        };
        assert_eq!(
            m.to_string(),
            "MODE hypervisor=none mode=hvm irq=x2apic eoi=x2apic-msr clock=tsc timer=tsc-deadline nic=virtio-net"
        );
    }
}
