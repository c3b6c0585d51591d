// The monitor's self-confinement (see sandbox.h). Runs once, as root, in
// the monitor before its loop; trusts nothing but these tables.
#include "privileged/sandbox.h"

#include <cap-ng.h>
#include <linux/capability.h>
#include <seccomp.h>

#include <cerrno>

#include "proto/log.h"

namespace inetd::priv {
namespace {

// Out of the bounding set: no process inetd starts, root or not, can ever
// hold these. None is needed to serve a connection.
constexpr int kNeverNeeded[] = {
    CAP_SYS_MODULE, CAP_SYS_RAWIO,   CAP_SYS_BOOT,     CAP_SYS_TIME,       CAP_MAC_ADMIN,
    CAP_MAC_OVERRIDE, CAP_WAKE_ALARM, CAP_BLOCK_SUSPEND, CAP_BPF,          CAP_PERFMON,
    CAP_SYSLOG,     CAP_SYS_PACCT,   CAP_AUDIT_CONTROL, CAP_CHECKPOINT_RESTORE, CAP_SYS_PTRACE,
};

// Out of the monitor's own effective and permitted sets, but left in the
// bounding set: a service configured to run as root gets them back at exec
// (sshd -i needs CAP_SYS_CHROOT and CAP_AUDIT_WRITE, for example).
constexpr int kMonitorDoesNotUse[] = {
    CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_NET_RAW,    CAP_NET_BROADCAST, CAP_IPC_LOCK, CAP_IPC_OWNER,
    CAP_LEASE,     CAP_MKNOD,     CAP_SYS_CHROOT, CAP_AUDIT_WRITE,   CAP_FSETID,   CAP_SETFCAP,
    CAP_SYS_TTY_CONFIG, CAP_LINUX_IMMUTABLE,
};

// Syscalls that fail with EPERM for the monitor and everything it spawns.
// EPERM rather than kill: a service probing for a feature must not die.
constexpr int kDenied[] = {
#if !INETD_SANITIZED_ADDRESS  // LeakSanitizer's exit check uses ptrace
    SCMP_SYS(ptrace),
#endif
    SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
    SCMP_SYS(mount),         SCMP_SYS(umount2),          SCMP_SYS(pivot_root),
    SCMP_SYS(swapon),        SCMP_SYS(swapoff),          SCMP_SYS(reboot),
    SCMP_SYS(init_module),   SCMP_SYS(finit_module),     SCMP_SYS(delete_module),
    SCMP_SYS(kexec_load),    SCMP_SYS(kexec_file_load),  SCMP_SYS(bpf),
    SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd),    SCMP_SYS(keyctl),
    SCMP_SYS(add_key),       SCMP_SYS(request_key),      SCMP_SYS(acct),
    SCMP_SYS(iopl),          SCMP_SYS(ioperm),           SCMP_SYS(open_by_handle_at),
    SCMP_SYS(settimeofday),  SCMP_SYS(clock_settime),    SCMP_SYS(quotactl),
};

}  // namespace

bool SandboxMonitor() {
  // The filter first: without no_new_privs (services may be setuid
  // programs), loading it takes CAP_SYS_ADMIN, which is dropped next.
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return false;
  bool ok = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0) == 0;
  for (int nr : kDenied) ok = ok && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) == 0;
  ok = ok && seccomp_load(ctx) == 0;
  seccomp_release(ctx);
  if (!ok) {
    Log(LOG_ERR, "cannot load the monitor's seccomp deny list");
    return false;
  }
  capng_get_caps_process();
  for (int cap : kNeverNeeded)
    capng_update(CAPNG_DROP,
                 static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET),
                 static_cast<unsigned>(cap));
  for (int cap : kMonitorDoesNotUse)
    capng_update(CAPNG_DROP, static_cast<capng_type_t>(CAPNG_EFFECTIVE | CAPNG_PERMITTED),
                 static_cast<unsigned>(cap));
  if (capng_apply(CAPNG_SELECT_BOTH) != 0) {
    Log(LOG_ERR, "cannot drop the monitor's capabilities");
    return false;
  }
  return true;
}

}  // namespace inetd::priv
