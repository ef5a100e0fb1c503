//! The seccomp filter written directly as classic BPF (x86_64): the decisions of
//! `launcher::seccomp::decisions`, as the libseccomp build writes them, in a fraction of the instructions. The
//! kernel converts, JIT-compiles and emulates (for its per-call cache) every filter a run
//! loads, in time that grows with its length: libseccomp's tree for ~280 allowed calls is
//! ~490 instructions, this one ~100, because it tests ranges of call numbers (a binary
//! search over where the decision changes) instead of every allowed number.
//!
//! Layout: the architecture (anything but x86_64 is killed), the x32 bit (killed), the
//! search over the number, then one block per call whose arguments are checked, then the
//! return instructions. Arguments are compared on their low 32 bits, which is all the kernel
//! reads of them (an int or an unsigned int): high bits cannot smuggle a value past.

use crate::launcher::seccomp::{Act, decisions};
use crate::policy::seccomp::{NS_FLAGS, PERSONALITY_OK, PR_SET_SECCOMP, SeccompPolicy, TIOCLINUX, TIOCSTI};
use nix::libc;

pub(crate) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
const X32_BIT: u32 = 0x4000_0000;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_NOTIFY: u32 = 0x7fc0_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;

// struct seccomp_data offsets
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn arg_lo(i: u32) -> u32 {
    16 + 8 * i
}

/// Where the decision changes: (first number, what it gets) from 0 on, neighbours merged.
fn segments(decided: &[(u32, Act)]) -> Vec<(u32, Act)> {
    let mut segs: Vec<(u32, Act)> = vec![(0, Act::Notify)];
    let mut next = 0u32;
    for &(nr, act) in decided {
        if nr > next && segs.last().is_some_and(|l| l.1 != Act::Notify) {
            segs.push((next, Act::Notify)); // a gap in the table
        }
        if segs.last().is_some_and(|l| l.1 != act) {
            segs.push((nr, act));
        }
        next = nr + 1;
    }
    if segs.last().is_some_and(|l| l.1 != Act::Notify) {
        segs.push((next, Act::Notify));
    }
    segs
}

#[derive(Clone, Copy)]
enum Ins {
    Ld(u32),
    /// conditional jump: opcode, k, true target, false target (labels)
    J(u16, u32, usize, usize),
    Ret(u32),
}

const LD_W_ABS: u16 = 0x20;
const JEQ: u16 = 0x15;
const JGE: u16 = 0x35;
const JSET: u16 = 0x45;
const RET_K: u16 = 0x06;

#[derive(Default)]
struct Asm {
    code: Vec<Ins>,
    /// label -> instruction index
    at: Vec<usize>,
}

impl Asm {
    fn label(&mut self) -> usize {
        self.at.push(usize::MAX);
        self.at.len() - 1
    }
    fn place(&mut self, l: usize) {
        self.at[l] = self.code.len();
    }
    fn here(&mut self) -> usize {
        let l = self.label();
        self.place(l);
        l
    }
    /// Load the argument word at `off`; to `hit` if it is one of `values`, else to `miss`.
    fn one_of(&mut self, off: u32, values: &[u32], hit: usize, miss: usize) {
        self.code.push(Ins::Ld(off));
        for (i, v) in values.iter().enumerate() {
            let next = if i + 1 == values.len() { miss } else { self.label() };
            self.code.push(Ins::J(JEQ, *v, hit, next));
            if next != miss {
                self.place(next);
            }
        }
    }

    fn bytes(&self) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(self.code.len() * 8);
        for (i, ins) in self.code.iter().enumerate() {
            let off = |l: usize| -> Option<u8> { self.at[l].checked_sub(i + 1).and_then(|d| u8::try_from(d).ok()) };
            let (code, jt, jf, k) = match *ins {
                Ins::Ld(k) => (LD_W_ABS, 0, 0, k),
                Ins::J(op, k, t, f) => (op, off(t)?, off(f)?, k),
                Ins::Ret(k) => (RET_K, 0, 0, k),
            };
            out.extend_from_slice(&code.to_le_bytes());
            out.extend_from_slice(&[jt, jf]);
            out.extend_from_slice(&k.to_le_bytes());
        }
        Some(out)
    }
}

/// The filter for `p`, or None where it cannot be written here (not x86_64, or a jump
/// farther than classic BPF's 255 instructions): then libseccomp builds it.
pub fn build(p: &SeccompPolicy) -> Option<(Vec<u8>, usize, usize)> {
    if !cfg!(target_arch = "x86_64") {
        return None;
    }
    let (decided, allowed, denied) = decisions(p);
    let segs = segments(&decided);
    let mut a = Asm::default();
    let [allow, notify, enosys, kill] = [a.label(), a.label(), a.label(), a.label()];
    let used = |act: Act| segs.iter().any(|s| s.1 == act);
    let blocks: Vec<(Act, usize)> = [Act::Clone, Act::Socket, Act::Ioctl, Act::Personality, Act::Prctl].into_iter().filter(|a| used(*a)).map(|act| (act, a.label())).collect();
    let target = |act: Act| match act {
        Act::Allow => allow,
        Act::Notify => notify,
        Act::Enosys => enosys,
        other => blocks.iter().find(|(b, _)| *b == other).map_or(notify, |(_, l)| *l),
    };
    a.code.push(Ins::Ld(OFF_ARCH));
    let after_arch = a.label();
    a.code.push(Ins::J(JEQ, AUDIT_ARCH_X86_64, after_arch, kill));
    a.place(after_arch);
    a.code.push(Ins::Ld(OFF_NR));
    let x32 = a.code.len();
    a.code.push(Ins::Ret(0)); // placeholder: the x32 test, once the tree's root is known
    // the search: each node sends numbers >= the middle segment's start right
    fn tree(a: &mut Asm, segs: &[(u32, Act)], target: &dyn Fn(Act) -> usize) -> usize {
        if segs.len() == 1 {
            return target(segs[0].1);
        }
        let me = a.here();
        let i = a.code.len();
        a.code.push(Ins::Ret(0)); // placeholder
        let mid = segs.len() / 2;
        let left = tree(a, &segs[..mid], target);
        let right = tree(a, &segs[mid..], target);
        a.code[i] = Ins::J(JGE, segs[mid].0, right, left);
        me
    }
    let top = tree(&mut a, &segs, &target);
    a.code[x32] = Ins::J(JGE, X32_BIT, kill, top);
    for (act, l) in &blocks {
        a.place(*l);
        match act {
            Act::Clone => {
                let mask = NS_FLAGS.iter().fold(0u64, |x, f| x | f) as u32;
                a.code.push(Ins::Ld(arg_lo(0)));
                a.code.push(Ins::J(JSET, mask, notify, allow));
            }
            Act::Socket => a.one_of(arg_lo(0), &p.families(), allow, notify),
            Act::Ioctl => a.one_of(arg_lo(1), &[TIOCSTI, TIOCLINUX], notify, allow),
            Act::Personality => a.one_of(arg_lo(0), &PERSONALITY_OK, allow, notify),
            Act::Prctl => a.one_of(arg_lo(0), &[PR_SET_SECCOMP], notify, allow),
            _ => {}
        }
    }
    for (l, k) in [(allow, RET_ALLOW), (notify, RET_NOTIFY), (enosys, RET_ERRNO | libc::ENOSYS as u32), (kill, RET_KILL_PROCESS)] {
        a.place(l);
        a.code.push(Ins::Ret(k));
    }
    Some((a.bytes()?, allowed, denied))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::seccomp::OnDeny;
    use crate::testing::bpf_eval as eval;

    fn policy(allow: &[&str], inet: bool) -> SeccompPolicy {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        SeccompPolicy::new(&allow, &[], false, OnDeny::Errno, inet, false).unwrap()
    }

    #[test]
    fn short_and_the_same_decisions_as_libseccomp() {
        let specials: &[(&str, usize, &[u64])] = &[
            ("clone", 0, &[0x11, 0x1_0000_0011, libc::CLONE_NEWUSER as u64 | 0x11, libc::CLONE_NEWNS as u64, libc::CLONE_NEWNET as u64, libc::CLONE_THREAD as u64]),
            ("socket", 0, &[1, 2, 10, 16, 17, 0x1_0000_0001]),
            ("socketpair", 0, &[1, 2, 16]),
            ("ioctl", 1, &[0x5401, 0x5412, 0x541c, 0x541d, 0x8000_5412]),
            ("personality", 0, &[0, 8, 0x20000, 0x20008, 0xffff_ffff, 1, 0x40000]),
            ("prctl", 0, &[1, 15, 22, 38]),
        ];
        for (allow, inet) in [(&["@basic"][..], false), (&["@basic"][..], true), (&["@basic", "seccomp"][..], false), (&["read", "write", "exit_group"][..], false)] {
            let p = policy(allow, inet);
            let (ours, oa, od) = build(&p).unwrap();
            let (theirs, ta, td) = crate::launcher::seccomp::compile_libseccomp(&p).unwrap();
            assert_eq!((oa, od), (ta, td), "{allow:?}");
            if allow[0] == "@basic" {
                assert!(ours.len() / 8 < 200 && ours.len() < theirs.len() / 3, "{} vs {} instructions", ours.len() / 8, theirs.len() / 8);
            }
            assert!(ours.len() <= theirs.len(), "{} vs {} instructions", ours.len() / 8, theirs.len() / 8);
            for nr in 0..1100u32 {
                for args in [[0u64; 6], [u64::MAX; 6], [0x5412, 0x5412, 0, 0, 0, 0]] {
                    assert_eq!(eval(&ours, AUDIT_ARCH_X86_64, nr, args), eval(&theirs, AUDIT_ARCH_X86_64, nr, args), "{allow:?} nr {nr} args {args:?}");
                }
            }
            for (name, arg, values) in specials {
                let nr = i32::from(libseccomp::ScmpSyscall::from_name(name).unwrap()) as u32;
                for v in *values {
                    let mut args = [0u64; 6];
                    args[*arg] = *v;
                    let (a, b) = (eval(&ours, AUDIT_ARCH_X86_64, nr, args), eval(&theirs, AUDIT_ARCH_X86_64, nr, args));
                    if *name == "prctl" && *v == 22 && !p.allow.contains("seccomp") {
                        assert_eq!(a, RET_NOTIFY);
                    }
                    assert_eq!(a, b, "{allow:?} {name}({v:#x})");
                }
            }
            // what a 64-bit compare lets through and the kernel reads as PR_SET_SECCOMP
            let prctl = i32::from(libseccomp::ScmpSyscall::from_name("prctl").unwrap()) as u32;
            if p.allow.contains("prctl") && !p.allow.contains("seccomp") {
                assert_eq!(eval(&ours, AUDIT_ARCH_X86_64, prctl, [0x1_0000_0016, 0, 0, 0, 0, 0]), RET_NOTIFY);
                assert_eq!(eval(&theirs, AUDIT_ARCH_X86_64, prctl, [0x1_0000_0016, 0, 0, 0, 0, 0]), RET_NOTIFY);
            }
            // other architectures and x32 are killed
            assert_eq!(eval(&ours, 0x4000_0003, 1, [0; 6]), RET_KILL_PROCESS);
            assert_eq!(eval(&ours, AUDIT_ARCH_X86_64, X32_BIT | 39, [0; 6]), RET_KILL_PROCESS);
            assert_eq!(eval(&ours, AUDIT_ARCH_X86_64, 0x7fff_ffff, [0; 6]), RET_KILL_PROCESS);
        }
    }
}
