//! ELF note types from `xen/include/public/elfnote.h`.
//!
//! The kernel image carries these in a `PT_NOTE` segment so that QEMU's `-kernel` loader
//! and Xen's domain builder can find the 32-bit PVH entry point.

/// Owner name of every Xen note (`"Xen"`, NUL-terminated).
pub const XEN_NOTE_NAME: &[u8; 4] = b"Xen\0";
/// `XEN_ELFNOTE_PHYS32_ENTRY`: physical address of the 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
