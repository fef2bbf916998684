//! The small traits behind which the platforms differ, and the one drivers hand them.
//!
//! The kernel picks one implementation of each at boot (`kernel/src/platform.rs`) and
//! never asks again which mode it runs in. Each trait has one exact meaning:
//!
//! - [`Console`]: bytes out, no allocation, usable from a fault handler.
//! - [`Clock`]: monotonic nanoseconds since an arbitrary origin.
//! - [`Timer`]: one one-shot deadline in the clock's time base; may fire late, never early.
//! - [`InterruptController`]: vectors for IPIs and MSIs, and the end-of-interrupt rule;
//!   an MSI comes back as an [`MsiRoute`], which says how it is masked ([`MsiMasking`]).
//! - [`PowerControl`]: how the machine is turned off, with a success or failure status.
//! - [`PhaseMarker`]: marks benchmark phases in the host's trace, where the host traces.
//! - [`PageMapper`]: one page mapped and unmapped the way this platform changes page
//!   tables (a PTE write natively, a hypercall in classic PV), for the MMU benchmarks.
//!
//! Drivers, timers and benchmarks implement [`IrqHandler`] on the state they share with
//! their interrupt path and register it with the controller, as Linux's
//! `request_irq(..., dev_id)` and Unikraft's `evtchn_alloc_unbound(..., handler, arg)`
//! do: the handler runs with its device's state as `&self`, so two devices of a kind
//! coexist and no driver keeps its interrupt state in a static. The tables behind the
//! controllers are [`crate::irq_table`]'s.

/// A text sink for the kernel's log.
pub trait Console: Sync {
    /// Writes bytes; must not allocate or take locks another context may hold.
    fn write(&self, bytes: &[u8]);
    /// Waits, for a bounded time, until what was written has left the guest (a shared
    /// ring drained by its back end). Called before power-off, so the last lines (a
    /// panic's) are not lost with the domain. Consoles that write through at once need
    /// nothing.
    fn flush(&self) {}
    /// Name for the mode report (`com1`, `e9`, …).
    fn name(&self) -> &'static str;
}

/// A monotonic clock.
pub trait Clock: Sync {
    /// Nanoseconds since the clock's origin; never goes backwards.
    fn now_ns(&self) -> u64;
    /// Name for the mode report (`tsc`, `pvclock`, …).
    fn name(&self) -> &'static str;
}

/// A one-shot timer programmed in the [`Clock`]'s time base.
pub trait Timer: Sync {
    /// Arms the timer: the callback given at construction runs once at or after
    /// `deadline_ns`, never before. A new deadline replaces the armed one; a deadline in
    /// the past fires as soon as possible.
    fn set_deadline_ns(&self, deadline_ns: u64);
    /// Disarms the timer.
    fn cancel(&self);
    /// How many times the hardware fired before the deadline and was armed again (the
    /// callback never runs early; this counts what keeping that promise took).
    fn early_fires(&self) -> u64;
    /// Name for the mode report (`tsc-deadline`, `lapic-oneshot`, …).
    fn name(&self) -> &'static str;
}

/// An interrupt vector of this CPU.
pub type Vector = u8;

/// An interrupt as its controller numbers it: a vector for the local APIC, a port for
/// event channels.
pub type Irq = u32;

/// What runs for an interrupt: implemented by the state a driver shares with its
/// interrupt path, registered once as `&'static dyn IrqHandler` (drivers leak that state,
/// as they leak their other `'static` objects).
///
/// `handle` runs in interrupt context with interrupts disabled: it must not allocate or
/// take a lock the interrupted code may hold. The controller's end-of-interrupt follows
/// it. A plain `fn(Irq)` (or any `Fn(Irq) + Sync`) is a handler too, for handlers that
/// need no state.
pub trait IrqHandler: Sync {
    /// Handles `irq` (a vector or an event channel port, as the controller numbers it).
    fn handle(&self, irq: Irq);
}

impl<F: Fn(Irq) + Sync> IrqHandler for F {
    fn handle(&self, irq: Irq) {
        self(irq)
    }
}

/// An MSI/MSI-X message: what the device writes where to raise an interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsiMessage {
    /// Message address.
    pub address: u64,
    /// Message data.
    pub data: u32,
}

/// Masks interrupts where they are delivered (an event channel's mask bit), keeping one
/// that arrives while masked pending until it is unmasked.
pub trait IrqMask: Sync {
    /// Masks `irq`: its handler does not run until [`unmask`](Self::unmask).
    fn mask(&self, irq: Irq);
    /// Unmasks `irq`; one that arrived while masked is delivered now.
    fn unmask(&self, irq: Irq);
}

/// Where a routed MSI is masked.
#[derive(Clone, Copy)]
pub enum MsiMasking {
    /// At the device, by the MSI-X entry's own mask bit: a LAPIC MSI, whose message
    /// names its vector. Under a hypervisor every mask and unmask is a trapped write.
    Device,
    /// At the controller that delivers it (an event channel bound to a PIRQ): the
    /// device's entry is unmasked once and stays so.
    Controller(&'static dyn IrqMask),
}

impl core::fmt::Debug for MsiMasking {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            MsiMasking::Device => "Device",
            MsiMasking::Controller(_) => "Controller",
        })
    }
}

/// A device interrupt as the controller routed it: the message the device writes, the
/// interrupt it becomes, and where it is masked. The driver programs the message into
/// its MSI-X entry once and masks through the route (`drivers::pci::msix::MsixVector`),
/// so it does not change with the controller.
#[derive(Clone, Copy, Debug)]
pub struct MsiRoute {
    /// The interrupt as the controller numbers it (a vector, or an event channel port).
    pub irq: Irq,
    /// What the device writes where.
    pub message: MsiMessage,
    /// How it is masked.
    pub masking: MsiMasking,
}

/// Why an interrupt could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqError {
    /// All vectors are in use.
    NoVectors,
    /// The interrupt already has a handler.
    InUse,
    /// The hypervisor refused (its error code).
    Hypervisor(i64),
    /// This controller cannot do that kind of interrupt.
    Unsupported,
    /// The hypervisor handed out an interrupt no MSI message can reach (a PIRQ of 256 or
    /// more, whose high bits qemu-xen drops): refused rather than routed elsewhere.
    Unreachable(u32),
}

/// Delivers interrupts to this CPU and says how they end.
pub trait InterruptController: Sync {
    /// Connects `handler` to a fresh interrupt this CPU can raise on itself.
    fn alloc_ipi(&self, handler: &'static dyn IrqHandler) -> Result<Irq, IrqError>;
    /// Raises `irq` (from [`alloc_ipi`](Self::alloc_ipi)) on this CPU.
    fn send_self_ipi(&self, irq: Irq);
    /// Connects `handler` to a fresh device interrupt and returns its route: the MSI
    /// message that raises it and how it is masked (the route may keep a reference to the
    /// controller, hence `'static`).
    fn alloc_msi(&'static self, handler: &'static dyn IrqHandler) -> Result<MsiRoute, IrqError>;
    /// Ends the interrupt taken on `vector` after its handlers ran (a LAPIC EOI, or
    /// nothing when the controller acknowledged it otherwise).
    fn end_of_interrupt(&self, vector: Vector);
    /// Name of the delivery path for the mode report (`xapic`, `x2apic`, …).
    fn name(&self) -> &'static str;
    /// Name of the end-of-interrupt mechanism for the mode report (`lapic-mmio`, `none`, …).
    fn eoi_name(&self) -> &'static str;
    /// How a device's MSI arrives, for the mode report: `lapic` (a vector and its EOI) or
    /// `pirq` (bound to an event channel).
    fn msi_name(&self) -> &'static str {
        "lapic"
    }
}

/// Exit status of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success,
    /// The kernel stopped on an error.
    Failure,
}

/// Turns the machine off.
pub trait PowerControl: Sync {
    /// Powers off, reporting `status` to the host where the platform can.
    fn power_off(&self, status: ExitStatus) -> !;
}

/// Marks the start and end of a benchmark phase where the host can see it (Xen's trace
/// buffer), so exits can be attributed per benchmark. A no-op elsewhere.
pub trait PhaseMarker: Sync {
    /// A phase of `iterations` operations named `name` starts.
    fn begin(&self, name: &str, iterations: u64);
    /// The phase ends.
    fn end(&self, name: &str, iterations: u64);
    /// Name for the log (`none`, `xentrace`).
    fn name(&self) -> &'static str;
}

/// The marker for hosts that cannot see phases.
pub struct NoMarker;

impl PhaseMarker for NoMarker {
    fn begin(&self, _name: &str, _iterations: u64) {}
    fn end(&self, _name: &str, _iterations: u64) {}
    fn name(&self) -> &'static str {
        "none"
    }
}

/// Maps and unmaps one page at a reserved virtual address, the way this platform changes
/// its page tables: natively a PTE write and `invlpg` (no exit under HAP), in classic PV
/// `update_va_mapping` (a hypercall Xen checks). The MMU benchmarks use it; the window is
/// reached only through [`touch`](Self::touch), never as a reference.
pub trait PageMapper: Sync {
    /// The window's virtual address (a page nothing else uses).
    fn window(&self) -> u64;
    /// Maps the identity-mapped kernel page at `page` also at the window, and flushes the
    /// window's TLB entry.
    fn map(&self, page: u64);
    /// Unmaps the window and flushes its TLB entry.
    fn unmap(&self);
    /// Flushes this CPU's TLB (its non-global entries).
    fn flush_tlb(&self);
    /// Name for the log (`pte-invlpg`, `update_va_mapping`).
    fn name(&self) -> &'static str;
}
