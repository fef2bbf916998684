//! ELF note types from `xen/include/public/elfnote.h`.
//!
//! The kernel image carries these in a `PT_NOTE` segment so that QEMU's `-kernel` loader
//! and Xen's domain builder can find the 32-bit PVH entry point.

/// Owner name of every Xen note (`"Xen"`, NUL-terminated).
pub const XEN_NOTE_NAME: &[u8; 4] = b"Xen\0";
/// `XEN_ELFNOTE_PHYS32_ENTRY`: physical address of the 32-bit PVH entry point.
pub const XEN_ELFNOTE_PHYS32_ENTRY: u32 = 18;
/// `XEN_ELFNOTE_ENTRY`: virtual address of the PV entry point.
pub const XEN_ELFNOTE_ENTRY: u32 = 1;
/// `XEN_ELFNOTE_HYPERCALL_PAGE`: virtual address of the page Xen fills with PV stubs.
pub const XEN_ELFNOTE_HYPERCALL_PAGE: u32 = 2;
/// `XEN_ELFNOTE_VIRT_BASE`: virtual address the pseudo-physical space starts at.
pub const XEN_ELFNOTE_VIRT_BASE: u32 = 3;
/// `XEN_ELFNOTE_PADDR_OFFSET`: subtracted from the ELF's addresses to get physical ones.
pub const XEN_ELFNOTE_PADDR_OFFSET: u32 = 4;
/// `XEN_ELFNOTE_XEN_VERSION`: the ABI version, `"xen-3.0"`.
pub const XEN_ELFNOTE_XEN_VERSION: u32 = 5;
/// `XEN_ELFNOTE_GUEST_OS`: the guest's name.
pub const XEN_ELFNOTE_GUEST_OS: u32 = 6;
/// `XEN_ELFNOTE_LOADER`: `"generic"`.
pub const XEN_ELFNOTE_LOADER: u32 = 8;
