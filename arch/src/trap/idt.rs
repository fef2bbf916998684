//! The interrupt descriptor table: 256 interrupt gates, one per stub of `entry.S`.

use crate::gdt;
use spin::Once;

/// One 16-byte IDT gate.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static IDT: Once<Idt> = Once::new();

/// Builds the IDT (every vector to its stub) and loads it. Call after [`gdt::init`].
pub fn init() {
    use x86_64::instructions::segmentation::{Segment, CS};
    extern "C" {
        static trap_stubs: u8;
    }
    let selector = CS::get_reg().0;
    let base = (&raw const trap_stubs) as u64;
    let idt = IDT.call_once(|| {
        let mut gates = [Gate::default(); 256];
        for (v, gate) in gates.iter_mut().enumerate() {
            let addr = base + 16 * v as u64;
            let ist = match v {
                8 => gdt::DOUBLE_FAULT_IST + 1,
                2 | 18 => gdt::NMI_IST + 1,
                _ => 0,
            };
            *gate = Gate {
                offset_low: addr as u16,
                selector,
                ist: ist as u8,
                attributes: 0x8e, // present, DPL 0, 64-bit interrupt gate
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
        }
        Idt(gates)
    });
    let ptr = x86_64::structures::DescriptorTablePointer {
        limit: (core::mem::size_of::<Idt>() - 1) as u16,
        base: x86_64::VirtAddr::from_ptr(idt),
    };
    // SAFETY: the IDT lives in a static for the kernel's lifetime and every gate points
    // at a stub of entry.S with the current code selector.
    unsafe { x86_64::instructions::tables::lidt(&ptr) };
}
