//! The hypercall page and the one assembly path into Xen.
//!
//! Xen writes call stubs (`mov $nr, %eax; vmmcall/vmcall; ret`, 32 bytes each) into a
//! page whose guest-physical address the guest writes to the MSR named by CPUID leaf
//! base+2. A hypercall is a `call` to stub `nr`, arguments in rdi, rsi, rdx, r10, r8,
//! result in rax. Every other module reaches Xen through [`hypercall`].

use core::sync::atomic::{AtomicBool, Ordering};
use xen_iface::cpuid::XenCpuidInfo;
use xen_iface::hypercall::STUB_SIZE;

#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// The page Xen fills with stubs. It lives in `.bss`, which the identity map leaves
/// executable. A PV guest's builder fills it before the entry (the image's
/// `XEN_ELFNOTE_HYPERCALL_PAGE` names this symbol), and the PV trap return jumps into it.
#[export_name = "hypercall_page"]
static mut PAGE: Page = Page([0; 4096]);
static READY: AtomicBool = AtomicBool::new(false);

/// Asks Xen to fill the hypercall page. Idempotent.
pub fn init(info: &XenCpuidInfo) {
    if READY.load(Ordering::Acquire) {
        return;
    }
    let phys = (&raw const PAGE) as u64; // identity-mapped: virtual = physical
                                         // SAFETY: the MSR comes from Xen's own CPUID leaf; writing a page-aligned guest
                                         // address to it makes Xen write the stubs into that page, which nothing else uses.
    unsafe { crate::cpu::wrmsr(info.hypercall_msr, phys) };
    READY.store(true, Ordering::Release);
}

/// Takes the page as the PV domain builder filled it (the ELF note's word): no MSR, which
/// a ring-3 PV kernel could not write.
///
/// # Safety
/// Only from the PV entry: Xen has filled the page before starting the guest there.
pub unsafe fn init_pv() {
    READY.store(true, Ordering::Release);
}

/// True once [`init`] ran.
pub fn ready() -> bool {
    READY.load(Ordering::Acquire)
}

/// Makes hypercall `nr` with up to five arguments; returns Xen's result (negative errno
/// on failure).
///
/// # Safety
/// [`init`] must have run, `nr` must be a hypercall number (< 128), and the arguments
/// must be what that hypercall expects: in particular, pointers must point at live,
/// correctly laid out structures that Xen may read or write for the call's duration.
pub unsafe fn hypercall(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    debug_assert!(ready() && (nr as usize) < 4096 / STUB_SIZE);
    let stub = (&raw const PAGE) as usize + nr as usize * STUB_SIZE;
    let ret: i64;
    // Xen may clobber the argument registers (debug builds do), so all are outputs; the
    // call is treated as a normal function call for the remaining registers.
    // SAFETY: the caller guarantees init ran (the page holds Xen's stubs) and valid arguments.
    unsafe {
        core::arch::asm!(
            "call {stub}",
            stub = in(reg) stub,
            inlateout("rax") nr as u64 => ret,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            lateout("rcx") _,
            lateout("r11") _,
            lateout("r9") _,
        )
    };
    ret
}
