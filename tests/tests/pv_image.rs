//! The one kernel ELF carries both of Xen's entries (issue 16): the PVH note that QEMU's
//! `-kernel` and Xen's PVH and HVM builders use, and the classic PV notes that Xen's PV
//! builder needs. Reads the built image only (build it first, as for every host test).

use harness::{elf, paths};

fn note(notes: &[elf::Note], kind: u32) -> Vec<u8> {
    notes
        .iter()
        .find(|n| n.name == "Xen" && n.kind == kind)
        .unwrap_or_else(|| panic!("no Xen note of type {kind}"))
        .desc
        .clone()
}

fn word(desc: &[u8]) -> u64 {
    u64::from_le_bytes(desc.try_into().unwrap_or_else(|_| panic!("an 8-byte note, not {} bytes", desc.len())))
}

#[test]
fn image_carries_the_pv_notes_beside_the_pvh_one() {
    let image = std::fs::read(paths::kernel()).expect("the kernel ELF (cargo build --release -p hykernel ...)");
    let notes = elf::notes(&image).unwrap();
    let pvh = word(&note(&notes, 18));
    let entry = word(&note(&notes, 1)); // XEN_ELFNOTE_ENTRY
    let hypercall_page = word(&note(&notes, 2));
    assert_eq!(note(&notes, 5), b"xen-3.0\0", "XEN_ELFNOTE_XEN_VERSION");
    assert_eq!(note(&notes, 8), b"generic\0", "XEN_ELFNOTE_LOADER");
    assert_eq!(note(&notes, 6), b"hykernel\0", "XEN_ELFNOTE_GUEST_OS");
    assert_eq!(word(&note(&notes, 3)), 0, "XEN_ELFNOTE_VIRT_BASE: virtual = pseudo-physical");
    assert_eq!(word(&note(&notes, 4)), 0, "XEN_ELFNOTE_PADDR_OFFSET");

    // Linked at virtual = physical, so a segment's physical range is its virtual one.
    let mut loads: Vec<_> = elf::segments(&image).unwrap().into_iter().filter(|s| s.kind == elf::PT_LOAD).collect();
    loads.sort_by_key(|s| s.paddr);
    let inside = |a: u64| loads.iter().any(|s| s.paddr <= a && a < s.paddr + s.mem_size);
    let text = &loads[0]; // .text comes first (kernel/link.ld)
    for (what, a) in [("PVH entry", pvh), ("PV entry", entry)] {
        assert!(text.paddr <= a && a < text.paddr + text.mem_size, "{what} {a:#x} outside the code");
    }
    assert_ne!(pvh, entry, "two entries: 32-bit PVH and 64-bit PV");
    assert_eq!(hypercall_page % 4096, 0, "the hypercall page is page-aligned");
    assert!(inside(hypercall_page) && inside(hypercall_page + 4095), "the hypercall page is inside the image");
}
