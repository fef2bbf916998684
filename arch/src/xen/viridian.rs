//! Viridian's APIC assist: the end of an interrupt that Xen delivered through the emulated
//! local APIC, without a VM exit.
//!
//! [`ApicAssist::enable`] writes the guest OS id (the TLFS asks for it before anything
//! else), registers vCPU 0's VP assist page (`HV_X64_MSR_VP_ASSIST_PAGE`), and checks with
//! one self-IPI that Xen sets the assist word when it delivers a vector: Xen has no CPUID
//! bit for its `apic_assist` option, and skips the assist where the CPU delivers
//! interrupts virtually (APICv), so delivery is the only proof. From then on
//! [`ApicAssist::end_of_interrupt`] is the EOI rule for every vector of this vCPU: swap the
//! assist word to 0 atomically; if bit 0 was set, Xen completes the EOI itself (lazily,
//! when it next looks at the APIC), else write the LAPIC's EOI register.
//!
//! The event channels' `percpu-assist` callback ([`super::events`]) ends its upcalls this
//! way; the leaves, MSR numbers and the page's layout are `xen_iface::viridian`'s.

use crate::apic::Lapic;
use crate::cpu;
use crate::platform::{Irq, IrqHandler};
use crate::trap;
use alloc::boxed::Box;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use x86_64::instructions::interrupts;
use xen_iface::viridian::{self as abi, msr, privilege, ViridianInfo, APIC_ASSIST_OFFSET, APIC_ASSIST_PENDING};

/// The VP assist page: 32-bit words, all atomic, as Xen writes into it concurrently.
#[repr(C, align(4096))]
struct VpAssistPage([AtomicU32; 1024]);
const _: () = assert!(core::mem::size_of::<VpAssistPage>() == 4096);

/// vCPU 0's VP assist page; Xen maps it while it is registered.
static VP_ASSIST_PAGE: VpAssistPage = VpAssistPage([const { AtomicU32::new(0) }; 1024]);
/// Set by the first [`ApicAssist::enable`]: the page above backs one instance.
static PAGE_TAKEN: AtomicBool = AtomicBool::new(false);

/// Spins the probe waits for its self-IPI (it arrives as soon as interrupts are on).
const PROBE_SPINS: u32 = 10_000_000;

/// Why the APIC assist is not available; each names what is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssistError {
    /// No Hyper-V leaves below Xen's: the domain runs without Viridian.
    NoViridian,
    /// Viridian's leaves do not grant the APIC MSRs, which include the VP assist page.
    NoVpAssistPage,
    /// Xen delivered the test interrupt without setting the assist.
    NotSet,
    /// The test interrupt never arrived.
    ProbeLost,
    /// No free vector for the test interrupt.
    NoVector,
    /// The VP assist page is registered already.
    AlreadyEnabled,
}

impl fmt::Display for AssistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AssistError::NoViridian => {
                "Xen offers no Viridian (Hyper-V) leaves: the domain's config needs viridian = [\"base\", \"apic_assist\"]"
            }
            AssistError::NoVpAssistPage => {
                "Viridian's leaves do not grant the APIC MSRs and the VP assist page (privilege AccessIntrCtrlRegs)"
            }
            AssistError::NotSet => {
                "Xen did not set the APIC assist on a test interrupt: \"apic_assist\" is missing from the domain's \
                 viridian list (or the CPU delivers interrupts virtually, where an EOI costs no exit anyway)"
            }
            AssistError::ProbeLost => "the APIC assist's test interrupt never arrived",
            AssistError::NoVector => "no free vector for the APIC assist's test interrupt",
            AssistError::AlreadyEnabled => "the VP assist page is registered already",
        })
    }
}

/// The registered VP assist page of vCPU 0, and the local APIC whose EOIs it may save.
pub struct ApicAssist {
    page: &'static VpAssistPage,
    lapic: &'static Lapic,
}

impl fmt::Debug for ApicAssist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApicAssist").field("page_gpa", &format_args!("{:#x}", self.gpa())).finish()
    }
}

impl ApicAssist {
    /// Registers the VP assist page, if `viridian` (the leaves found below Xen's) grants
    /// it, and proves with one self-IPI through `lapic` that Xen sets the assist. Call it
    /// before the platform's interrupt controller is chosen: the test interrupt ends
    /// itself. Interrupts are on for the test, then as they were.
    pub fn enable(viridian: Option<ViridianInfo>, lapic: &'static Lapic) -> Result<&'static ApicAssist, AssistError> {
        let info = viridian.ok_or(AssistError::NoViridian)?;
        if !info.offers_vp_assist() {
            return Err(AssistError::NoVpAssistPage);
        }
        let value = abi::vp_assist_msr((&raw const VP_ASSIST_PAGE) as u64).ok_or(AssistError::NoVpAssistPage)?;
        if PAGE_TAKEN.swap(true, Ordering::AcqRel) {
            return Err(AssistError::AlreadyEnabled);
        }
        let assist: &'static ApicAssist = Box::leak(Box::new(ApicAssist { page: &VP_ASSIST_PAGE, lapic }));
        if info.has_privilege(privilege::HYPERCALL_MSRS) {
            let (major, minor, patch) = crate_version();
            // SAFETY: Viridian's leaves grant the hypercall MSRs, GUEST_OS_ID among them;
            // the id is the TLFS's open-source form and changes nothing but Xen's records.
            unsafe { cpu::wrmsr(msr::GUEST_OS_ID, abi::guest_os_id(major, minor, patch)) };
        }
        // SAFETY: the leaves grant the VP assist page MSR; the page is a page-aligned
        // static of this kernel's RAM, used for nothing else, so Xen may map and write it.
        unsafe { cpu::wrmsr(msr::VP_ASSIST_PAGE, value) };
        match assist.probe() {
            Ok(true) => Ok(assist),
            failed => {
                // SAFETY: as above; 0 unregisters the page (Xen unmaps it).
                unsafe { cpu::wrmsr(msr::VP_ASSIST_PAGE, 0) };
                PAGE_TAKEN.store(false, Ordering::Release);
                Err(failed.err().unwrap_or(AssistError::NotSet))
            }
        }
    }

    /// Ends the interrupt in service: nothing if Xen's assist was still set (it completes
    /// the EOI), else the LAPIC's EOI write; true if the assist was set. One atomic swap,
    /// never a separate read and write: Xen crashes a domain in which an assist is set
    /// while one is pending.
    #[inline]
    pub fn end_of_interrupt(&self) -> bool {
        let set = self.take();
        if !set {
            self.lapic.eoi();
        }
        set
    }

    /// Clears the assist word; true if Xen had set the assist.
    #[inline]
    fn take(&self) -> bool {
        self.page.0[APIC_ASSIST_OFFSET / 4].swap(0, Ordering::AcqRel) & APIC_ASSIST_PENDING != 0
    }

    /// The page's guest-physical address (the kernel's RAM is identity-mapped).
    pub fn gpa(&self) -> u64 {
        self.page as *const VpAssistPage as u64
    }

    /// Raises one self-IPI and reports whether Xen set the assist for it.
    fn probe(&'static self) -> Result<bool, AssistError> {
        let probe: &'static Probe =
            Box::leak(Box::new(Probe { assist: self, taken: AtomicBool::new(false), set: AtomicBool::new(false) }));
        let vector = trap::alloc_vector(probe).map_err(|_| AssistError::NoVector)?;
        let were_enabled = interrupts::are_enabled();
        interrupts::disable();
        self.lapic.send_self_ipi(vector);
        interrupts::enable();
        let mut spins = 0;
        while !probe.taken.load(Ordering::Acquire) && spins < PROBE_SPINS {
            core::hint::spin_loop();
            spins += 1;
        }
        if !were_enabled {
            interrupts::disable();
        }
        if !probe.taken.load(Ordering::Acquire) {
            return Err(AssistError::ProbeLost);
        }
        Ok(probe.set.load(Ordering::Acquire))
    }
}

/// The test interrupt's handler: records whether the assist was set, and ends the
/// interrupt by the assist's rule (no controller is chosen yet to do it).
struct Probe {
    assist: &'static ApicAssist,
    taken: AtomicBool,
    set: AtomicBool,
}

impl IrqHandler for Probe {
    fn handle(&self, _vector: Irq) {
        let set = self.assist.end_of_interrupt();
        self.set.store(set, Ordering::Release);
        self.taken.store(true, Ordering::Release);
    }
}

/// This crate's version, for the guest OS id.
fn crate_version() -> (u8, u8, u8) {
    let part = |s: &str| s.parse().unwrap_or(0);
    (
        part(env!("CARGO_PKG_VERSION_MAJOR")),
        part(env!("CARGO_PKG_VERSION_MINOR")),
        part(env!("CARGO_PKG_VERSION_PATCH")),
    )
}
