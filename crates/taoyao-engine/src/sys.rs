//! Batched UDP syscalls (Linux): `recvmmsg` for ingress and `sendmmsg` for egress, so one
//! syscall moves up to [`BATCH`] datagrams. The only unsafe code of the crate besides the
//! driver's eventfd; every block says why it is sound. GSO sends (runs of datagrams to one
//! destination) are in `egress.rs`, through quinn-udp.

use std::io;
use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Datagrams per syscall.
pub const BATCH: usize = 32;
/// Receive buffer per datagram: larger than any MTU-sized packet WebRTC sends.
const BUF: usize = 2048;

/// Receive buffers, reused across calls.
pub struct RecvBatch {
    bufs: Box<[[u8; BUF]]>,
    addrs: Box<[libc::sockaddr_storage]>,
}

impl RecvBatch {
    pub fn new() -> Self {
        RecvBatch {
            bufs: vec![[0u8; BUF]; BATCH].into_boxed_slice(),
            // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
            addrs: vec![unsafe { zeroed::<libc::sockaddr_storage>() }; BATCH].into_boxed_slice(),
        }
    }

    /// Reads up to [`BATCH`] datagrams without blocking and hands each to `on`. Returns how
    /// many were read (`WouldBlock` when none is queued).
    pub fn recv(&mut self, fd: RawFd, mut on: impl FnMut(SocketAddr, &[u8])) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain old data; zero is a valid starting value and
        // every pointer is set below before the call.
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for i in 0..BATCH {
            iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: BUF,
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: hdrs holds BATCH headers whose name and iovec pointers point into self.addrs,
        // self.bufs and iovs, all alive and unaliased for the duration of the call.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        for (i, h) in hdrs.iter().enumerate().take(n) {
            let len = (h.msg_len as usize).min(BUF);
            if let Some(from) = to_std(&self.addrs[i]) {
                on(from, &self.bufs[i][..len]);
            }
        }
        Ok(n)
    }
}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

/// Sends the datagrams, [`BATCH`] per `sendmmsg`. Returns how many the kernel took; the rest
/// (a full send buffer: `WouldBlock`, or an error on one datagram) are dropped, as a router
/// would, and left to RTP's own loss repair.
pub fn send_batch<P: AsRef<[u8]>>(fd: RawFd, datagrams: &[(SocketAddr, P)]) -> usize {
    let mut sent = 0;
    for chunk in datagrams.chunks(BATCH) {
        // SAFETY: plain old data, fully initialized below before use.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { zeroed() };
        for (i, (to, payload)) in chunk.iter().enumerate() {
            let payload = payload.as_ref();
            let len = from_std(*to, &mut addrs[i]);
            iovs[i] = libc::iovec {
                // sendmmsg only reads the buffer; the cast to *mut is the C signature's.
                iov_base: payload.as_ptr() as *mut libc::c_void,
                iov_len: payload.len(),
            };
            let h = &mut hdrs[i].msg_hdr;
            h.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            h.msg_namelen = len;
            h.msg_iov = &mut iovs[i];
            h.msg_iovlen = 1;
        }
        let mut done = 0;
        while done < chunk.len() {
            // SAFETY: hdrs[done..chunk.len()] point into addrs, iovs and the caller's payloads,
            // all alive for the call.
            let n = unsafe {
                libc::sendmmsg(
                    fd,
                    hdrs[done..].as_mut_ptr(),
                    (chunk.len() - done) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The first datagram of the rest failed: skip it and go on with the others
                // unless the socket is full (then the rest would fail too).
                if e.kind() == io::ErrorKind::WouldBlock {
                    tracing::debug!("shard send buffer full: {} dropped", chunk.len() - done);
                    break;
                }
                tracing::debug!(to = %chunk[done].0, "shard send: {e}");
                done += 1;
                continue;
            }
            done += n as usize;
            sent += n as usize;
        }
    }
    sent
}

fn to_std(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(a.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it is large and
            // aligned enough for.
            let v4 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(v4.sin_addr.s_addr.to_ne_bytes()),
                u16::from_be(v4.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 = unsafe { &*(a as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(v6.sin6_addr.s6_addr),
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn from_std(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for a sockaddr_in.
            let v4 =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            v4.sin_family = libc::AF_INET as libc::sa_family_t;
            v4.sin_port = a.port().to_be();
            v4.sin_addr = libc::in_addr {
                s_addr: u32::from_ne_bytes(a.ip().octets()),
            };
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above, for sockaddr_in6.
            let v6 =
                unsafe { &mut *(out as *mut libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            v6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            v6.sin6_port = a.port().to_be();
            v6.sin6_flowinfo = a.flowinfo();
            v6.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            v6.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_batch_goes_out_and_comes_back_with_its_sources() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = b.local_addr().unwrap();
        let payloads: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let batch: Vec<(SocketAddr, &[u8])> = payloads.iter().map(|p| (to, p.as_slice())).collect();
        assert_eq!(send_batch(a.as_raw_fd(), &batch), 40);
        let mut rx = RecvBatch::new();
        let mut got = Vec::new();
        while got.len() < 40 {
            match rx.recv(b.as_raw_fd(), |from, bytes| {
                got.push((from, bytes.to_vec()))
            }) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(e) => panic!("{e}"),
            }
        }
        assert!(got.iter().all(|(from, _)| *from == a.local_addr().unwrap()));
        let got: Vec<Vec<u8>> = got.into_iter().map(|(_, p)| p).collect();
        assert_eq!(got, payloads, "every datagram, in order, intact");
    }
}
