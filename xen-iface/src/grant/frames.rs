//! How a domain names one of its pages to a peer in a grant entry: the frame number the
//! peer's hypervisor call will look up. An HVM or PVH guest names its guest frame (Xen
//! translates it through the domain's p2m); a classic PV guest has no such translation on
//! Xen's side and must name the machine frame, which it looks up in its own frame list
//! (start_info's `mfn_list`). Chosen once when the grant table is set up; drivers only
//! ever hand over their pages' guest frames.

use super::GrantError;
use crate::pv::FrameList;

/// `INVALID_P2M_ENTRY`: a frame-list slot with no machine frame behind it.
const INVALID: u64 = u64::MAX;

/// How this domain's frames are named to peers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerFrames {
    /// HVM and PVH: the guest frame number itself.
    Guest,
    /// Classic PV: the machine frame, from the domain's pseudo-physical to machine list.
    Machine(&'static [u64]),
}

impl PeerFrames {
    /// The frame number a grant entry gives for guest frame `gfn`;
    /// [`GrantError::NotOurs`] if the domain has no such frame.
    pub fn peer_frame(&self, gfn: u64) -> Result<u64, GrantError> {
        match self {
            PeerFrames::Guest => Ok(gfn),
            PeerFrames::Machine(list) => match list.mfn(gfn) {
                INVALID => Err(GrantError::NotOurs(gfn)),
                mfn => Ok(mfn),
            },
        }
    }

    /// What the peer sees, for the log.
    pub fn name(&self) -> &'static str {
        match self {
            PeerFrames::Guest => "guest frames",
            PeerFrames::Machine(_) => "machine frames (the p2m list)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guests_name_their_own_frame_pv_the_machine_one() {
        assert_eq!(PeerFrames::Guest.peer_frame(0x1234), Ok(0x1234));
        static LIST: [u64; 4] = [0x9000, 0x9a31, INVALID, 0x10];
        let pv = PeerFrames::Machine(&LIST);
        assert_eq!(pv.peer_frame(1), Ok(0x9a31));
        assert_eq!(pv.peer_frame(3), Ok(0x10));
        assert_eq!(pv.peer_frame(2), Err(GrantError::NotOurs(2)), "a hole in the p2m");
        assert_eq!(pv.peer_frame(4), Err(GrantError::NotOurs(4)), "past the domain's frames");
    }
}
