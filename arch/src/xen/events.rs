//! Event channels as the interrupt controller of the Xen modes.
//!
//! Maps `shared_info`, moves vCPU 0's `vcpu_info` into a page of its own where Xen lets
//! it (`VCPUOP_register_vcpu_info`), and has Xen deliver event upcalls on one vector,
//! either the **global** callback (`HVM_PARAM_CALLBACK_IRQ`, vector type: injected without
//! the local APIC, so it ends with no EOI) or the **per-vCPU** upcall vector
//! (`HVMOP_set_evtchn_upcall_vector`: through the local APIC, so it ends with a LAPIC
//! EOI, or, with Viridian's APIC assist ([`super::viridian`]), with no EOI write where Xen
//! set the assist). [`EventChannels`] is that vector's handler: the upcall runs
//! `xen_iface::events::scan` and calls each port's handler, with its context, from a
//! table of [`HandlerSlot`]s; acknowledging an event is clearing bits in shared memory.
//!
//! A device's MSI goes through the local APIC (a vector, masked at the device, ended by
//! an EOI) unless [`EventChannels::route_msis_over_pirqs`] was called: then each MSI is a
//! PIRQ bound to an event channel (`xen_iface::physdev`), masked and acknowledged here,
//! in shared memory, with no MSI-X table write and no EOI.

use super::shared::SharedPage;
use super::viridian::ApicAssist;
use super::Xen;
use crate::apic::Lapic;
use crate::irq_table::HandlerSlot;
use crate::platform::{
    InterruptController, Irq, IrqError, IrqHandler, IrqMask, MsiMasking, MsiMessage, MsiRoute, Vector,
};
use crate::trap;
use alloc::boxed::Box;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use spin::Once;
use xen_iface::events::{self, NR_PORTS, VCPU_INFO_SIZE, VCPU_TIME};
use xen_iface::hypercall::{callback_via_vector, param, XENMAPSPACE_SHARED_INFO};
use xen_iface::physdev;

/// How event upcalls reach the vCPU.
#[derive(Clone, Copy, Debug)]
pub enum Callback {
    /// `HVM_PARAM_CALLBACK_IRQ` with the vector type: no LAPIC, no EOI.
    Global,
    /// `HVMOP_set_evtchn_upcall_vector`: through the LAPIC, ends with an EOI.
    PerCpu,
    /// The per-vCPU vector, and every interrupt of the LAPIC ends by the APIC assist's
    /// rule (no EOI write where Xen set the assist).
    PerCpuAssist(&'static ApicAssist),
    /// Classic PV: Xen bounces upcalls to the event callback (`set_callbacks`), masked
    /// by `evtchn_upcall_mask`; `shared_info` was mapped by [`map_pv_shared_info`].
    Pv,
}

impl Callback {
    /// The `callback=` name.
    pub fn name(&self) -> &'static str {
        match self {
            Callback::Global => "global",
            Callback::PerCpu => "percpu",
            Callback::PerCpuAssist(_) => "percpu-assist",
            Callback::Pv => "pv",
        }
    }
}

/// Why event channels could not be set up.
#[derive(Clone, Copy, Debug)]
pub enum EventError {
    /// Mapping `shared_info` failed.
    SharedInfo(i64),
    /// No free vector for the upcall.
    NoVector,
    /// Xen refused the callback (its error code).
    Callback(i64),
    /// The per-vCPU callback needs the local APIC for its EOI.
    NeedsLapic,
    /// Event channels were set up already (their frames below back one instance).
    AlreadyInitialised,
    /// The PV callback without [`map_pv_shared_info`] first.
    NotMapped,
}

/// Rounds over the pending bitmaps per upcall before leaving the rest to the next one.
const MAX_SCAN_ROUNDS: u32 = 16;

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The frame `shared_info` is mapped into (its RAM is given up to Xen).
static mut SHARED_INFO_FRAME: Page = Page([0; 4096]);
/// vCPU 0's own `vcpu_info`, when Xen accepts it.
static mut VCPU_INFO_FRAME: Page = Page([0; 4096]);
/// Set by the first [`EventChannels::init`]: the frames above back one instance.
static FRAMES_TAKEN: AtomicBool = AtomicBool::new(false);

/// Set by [`map_pv_shared_info`]: `SHARED_INFO_FRAME`'s page shows `shared_info`.
static PV_MAPPED: AtomicBool = AtomicBool::new(false);

/// Classic PV: maps `shared_info` (Xen names its machine address) over the frame event
/// channels use, before anything else (its `vcpu_info` holds the interrupt flag).
/// Returns its virtual address.
pub fn map_pv_shared_info(xen: Xen, maddr: u64) -> Result<u64, EventError> {
    if FRAMES_TAKEN.swap(true, Ordering::AcqRel) {
        return Err(EventError::AlreadyInitialised);
    }
    let va = (&raw const SHARED_INFO_FRAME) as u64;
    // SAFETY: the page is this module's alone (FRAMES_TAKEN), mapped by the bootstrap
    // tables; its own frame is given up for shared_info's.
    unsafe { xen.pv().update_va_mapping(va, maddr & !0xfff | xen_iface::pv::pte::DATA) }
        .map_err(EventError::SharedInfo)?;
    PV_MAPPED.store(true, Ordering::Release);
    Ok(va)
}

/// Device MSIs through the local APIC, a vector and its EOI (an HVM guest's default).
const MSI_LAPIC: u8 = 0;
/// Device MSIs as PIRQs bound to event channels.
const MSI_PIRQ: u8 = 1;
/// No device that could raise an MSI (classic PV, PVH).
const MSI_NONE: u8 = 2;

/// Event channels of this domain; also the handler of the upcall vector.
pub struct EventChannels {
    xen: Xen,
    shared: SharedPage,
    vcpu: SharedPage,
    /// The upcall vector, once connected.
    vector: Once<Vector>,
    callback: Callback,
    lapic: Option<&'static Lapic>,
    /// Handlers by port.
    handlers: Box<[HandlerSlot]>,
    /// Where device MSIs go: one of the `MSI_*` routes.
    msi_route: AtomicU8,
    /// A device MSI was routed through the LAPIC (its interrupts end with an EOI).
    lapic_msis: AtomicBool,
}

impl EventChannels {
    /// Maps `shared_info`, registers `vcpu_info` and the upcall. `lapic` serves the
    /// per-vCPU callback's EOI and MSIs; it may be `None` only with the global callback
    /// and the PV one.
    pub fn init(
        xen: Xen,
        callback: Callback,
        lapic: Option<&'static Lapic>,
    ) -> Result<&'static EventChannels, EventError> {
        if !matches!(callback, Callback::Global | Callback::Pv) && lapic.is_none() {
            return Err(EventError::NeedsLapic);
        }
        let shared_gpa = (&raw const SHARED_INFO_FRAME) as u64;
        if matches!(callback, Callback::Pv) {
            return Self::init_pv(xen, shared_gpa);
        }
        if FRAMES_TAKEN.swap(true, Ordering::AcqRel) {
            return Err(EventError::AlreadyInitialised);
        }
        xen.add_to_physmap(XENMAPSPACE_SHARED_INFO, 0, shared_gpa >> 12).map_err(|e| {
            FRAMES_TAKEN.store(false, Ordering::Release); // Xen took neither frame
            EventError::SharedInfo(e)
        })?;
        // SAFETY: Xen just mapped shared_info over this page-aligned static frame; only
        // this module uses it.
        let shared = unsafe { SharedPage::new(shared_gpa, 4096) };
        let own_gpa = (&raw const VCPU_INFO_FRAME) as u64;
        let vcpu = match xen.register_vcpu_info(0, own_gpa) {
            // SAFETY: Xen now keeps vCPU 0's vcpu_info at the start of this static frame.
            Ok(()) => unsafe { SharedPage::new(own_gpa, VCPU_INFO_SIZE) },
            Err(e) => {
                log::info!("VCPUOP_register_vcpu_info refused ({e}); using shared_info's vcpu_info[0]");
                // SAFETY: vcpu_info[0] is the first 64 bytes of the shared_info page.
                unsafe { SharedPage::new(shared_gpa, VCPU_INFO_SIZE) }
            }
        };
        let ev: &'static EventChannels = Box::leak(Box::new(EventChannels {
            xen,
            shared,
            vcpu,
            vector: Once::new(),
            callback,
            lapic,
            handlers: (0..NR_PORTS).map(|_| HandlerSlot::new()).collect(),
            msi_route: AtomicU8::new(MSI_LAPIC),
            lapic_msis: AtomicBool::new(false),
        }));
        let vector = trap::alloc_vector(ev).map_err(|_| EventError::NoVector)?;
        ev.vector.call_once(|| vector);
        match callback {
            Callback::Global => xen.set_hvm_param(param::CALLBACK_IRQ, callback_via_vector(vector)),
            Callback::PerCpu | Callback::PerCpuAssist(_) => xen.set_upcall_vector(0, vector),
            Callback::Pv => Err(-22), // handled by init_pv above
        }
        .map_err(EventError::Callback)?;
        Ok(ev)
    }

    /// Classic PV: `shared_info` is mapped at `va` already; vCPU 0's `vcpu_info` is its
    /// first (a PV guest would name a machine frame to move it), and the upcall is the
    /// event callback.
    fn init_pv(xen: Xen, va: u64) -> Result<&'static EventChannels, EventError> {
        if !PV_MAPPED.load(Ordering::Acquire) {
            return Err(EventError::NotMapped);
        }
        let ev: &'static EventChannels = Box::leak(Box::new(EventChannels {
            xen,
            // SAFETY: shared_info is mapped at va for good (map_pv_shared_info).
            shared: unsafe { SharedPage::new(va, 4096) },
            // SAFETY: vcpu_info[0] is its first 64 bytes.
            vcpu: unsafe { SharedPage::new(va, VCPU_INFO_SIZE) },
            vector: Once::new(),
            callback: Callback::Pv,
            lapic: None,
            handlers: (0..NR_PORTS).map(|_| HandlerSlot::new()).collect(),
            msi_route: AtomicU8::new(MSI_NONE), // a PV guest has no device that could raise one
            lapic_msis: AtomicBool::new(false),
        }));
        let vector = trap::alloc_vector(ev).map_err(|_| EventError::NoVector)?;
        ev.vector.call_once(|| vector);
        #[cfg(target_os = "none")]
        trap::pv::init_callbacks(xen, vector).map_err(EventError::Callback)?;
        Ok(ev)
    }

    /// The hypercall handle.
    pub fn xen(&self) -> Xen {
        self.xen
    }

    /// Where vCPU 0's `vcpu_time_info` is: the page and the offset in it.
    pub fn vcpu_time(&self) -> (&SharedPage, usize) {
        (&self.vcpu, VCPU_TIME)
    }

    /// Connects `handler` to `port` (an already bound port without a handler) and
    /// unmasks it. An event that arrived before the handler did (binding an interdomain
    /// port raises it, for one) was masked by the upcall as a stray; unmasking delivers
    /// it now.
    pub fn bind(&self, port: u32, handler: &'static dyn IrqHandler) -> Result<(), IrqError> {
        let slot = self.handlers.get(port as usize).ok_or(IrqError::Unsupported)?;
        if !slot.claim(handler) {
            return Err(IrqError::InUse);
        }
        self.unmask(port);
        Ok(())
    }

    /// Disconnects `port`'s handler and closes the port (`EVTCHNOP_close`); Xen may
    /// hand its number out again, to be bound afresh.
    pub fn close(&self, port: u32) -> Result<(), i64> {
        if let Some(slot) = self.handlers.get(port as usize) {
            slot.clear();
        }
        self.xen.close(port)
    }

    /// Binds virtual IRQ `virq` of vCPU 0 and connects `handler`.
    pub fn bind_virq(&self, virq: u32, handler: &'static dyn IrqHandler) -> Result<u32, IrqError> {
        let port = self.xen.bind_virq(virq, 0).map_err(IrqError::Hypervisor)?;
        self.bind(port, handler)?;
        Ok(port)
    }

    /// Notifies the other end of `port` (one hypercall).
    #[inline]
    pub fn notify(&self, port: u32) {
        self.xen.evtchn_send(port);
    }

    /// From now on, device MSIs are PIRQs bound to event channels. Only where Xen offers
    /// `XENFEAT_hvm_pirqs` (the caller checks): without it `PHYSDEVOP_get_free_pirq` fails
    /// and so does every MSI.
    pub fn route_msis_over_pirqs(&self) {
        self.msi_route.store(MSI_PIRQ, Ordering::Release);
    }

    /// This domain has no emulated device (PVH): no MSI to route, and the mode report
    /// says `msi=none`; a request for one is refused.
    pub fn without_device_msis(&self) {
        self.msi_route.store(MSI_NONE, Ordering::Release);
    }

    /// An MSI over a fresh PIRQ: its port connected to `handler` and unmasked, and the
    /// message that raises it (vector 0, the PIRQ in the destination ID).
    fn alloc_pirq_msi(&'static self, handler: &'static dyn IrqHandler) -> Result<MsiRoute, IrqError> {
        let pirq = self.xen.get_free_msi_pirq().map_err(IrqError::Hypervisor)?;
        let (address, data) = physdev::pirq_msi_message(pirq).map_err(|e| {
            log::error!("MSI over PIRQ: Xen gave PIRQ {pirq}, which no MSI can reach ({e:?}): refused");
            IrqError::Unreachable(pirq)
        })?;
        let port = self.xen.bind_pirq(pirq).map_err(IrqError::Hypervisor)?;
        if let Err(e) = self.bind(port, handler) {
            let _ = self.close(port);
            return Err(e);
        }
        log::info!("MSI over PIRQ {pirq}: event channel {port}, message {address:#x}/{data:#x}");
        Ok(MsiRoute { irq: port, message: MsiMessage { address, data }, masking: MsiMasking::Controller(self) })
    }

    /// Masks `port` (shared memory only, no exit).
    pub fn mask(&self, port: u32) {
        events::mask(&self.shared, port);
    }

    /// Unmasks `port`; only if an event arrived while it was masked does this cost a
    /// hypercall (Xen re-delivers it).
    pub fn unmask(&self, port: u32) {
        if events::unmask(&self.shared, port) == Some(true) {
            let _ = self.xen.unmask(port);
        }
    }
}

/// Masking a PIRQ's MSI: the event channel's mask bit. Unmasking costs a hypercall only
/// if an event arrived while masked.
impl IrqMask for EventChannels {
    fn mask(&self, port: Irq) {
        EventChannels::mask(self, port);
    }

    fn unmask(&self, port: Irq) {
        EventChannels::unmask(self, port);
    }
}

/// The upcall: runs the handler of every pending, unmasked port.
impl IrqHandler for EventChannels {
    fn handle(&self, _vector: Irq) {
        events::scan(&self.shared, &self.vcpu, 0, MAX_SCAN_ROUNDS, |port| {
            if !self.handlers.get(port as usize).is_some_and(|slot| slot.dispatch(port)) {
                // An event nobody asked for: mask it so it cannot storm.
                events::mask(&self.shared, port);
            }
        });
    }
}

impl InterruptController for EventChannels {
    fn alloc_ipi(&self, handler: &'static dyn IrqHandler) -> Result<Irq, IrqError> {
        let port = self.xen.bind_ipi(0).map_err(IrqError::Hypervisor)?;
        self.bind(port, handler)?;
        Ok(port)
    }

    fn send_self_ipi(&self, irq: Irq) {
        self.notify(irq);
    }

    /// Over a PIRQ and an event channel once [`EventChannels::route_msis_over_pirqs`]
    /// was called, else through the local APIC.
    fn alloc_msi(&'static self, handler: &'static dyn IrqHandler) -> Result<MsiRoute, IrqError> {
        match self.msi_route.load(Ordering::Acquire) {
            MSI_PIRQ => return self.alloc_pirq_msi(handler),
            MSI_NONE => return Err(IrqError::Unsupported),
            _ => {}
        }
        let route = crate::apic::lapic_msi(self.lapic.ok_or(IrqError::Unsupported)?, handler)?;
        self.lapic_msis.store(true, Ordering::Release);
        Ok(route)
    }

    fn end_of_interrupt(&self, vector: Vector) {
        match self.callback {
            // Bounced by Xen, acknowledged in shared memory: nothing to end.
            Callback::Pv => {}
            // Injected without the LAPIC: nothing to end.
            Callback::Global if self.vector.get() == Some(&vector) => {}
            // Xen sets the assist for any vector it delivers with nothing else in service.
            Callback::PerCpuAssist(assist) => {
                assist.end_of_interrupt();
            }
            _ => {
                if let Some(l) = self.lapic {
                    l.eoi();
                }
            }
        }
    }

    fn name(&self) -> &'static str {
        "evtchn"
    }

    fn msi_name(&self) -> &'static str {
        match self.msi_route.load(Ordering::Acquire) {
            MSI_NONE => "none",
            MSI_PIRQ => "pirq",
            _ => "lapic",
        }
    }

    /// The upcall's EOI; on the global callback, whose events need none, `none+` and the
    /// LAPIC's EOI once a device MSI was routed through the LAPIC (its interrupts do).
    fn eoi_name(&self) -> &'static str {
        let lapic_msis = self.lapic_msis.load(Ordering::Acquire);
        match (self.callback, self.lapic) {
            (Callback::Global, Some(l)) if lapic_msis && l.is_x2apic() => "none+x2apic-msr",
            (Callback::Global, Some(_)) if lapic_msis => "none+lapic-mmio",
            (Callback::Global | Callback::Pv, _) => "none",
            (Callback::PerCpuAssist(_), _) => "viridian-assist",
            (Callback::PerCpu, Some(l)) if l.is_x2apic() => "x2apic-msr",
            (Callback::PerCpu, _) => "lapic-mmio",
        }
    }
}
