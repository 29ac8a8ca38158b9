// wait_bench: how fast does a login waiting for a card (wait_for_card)
// proceed once the card is in the reader?
//
// For each run: the card is removed, pam_authenticate starts (real libpam,
// pam_start_confdir, the built module), the module shows "Insert your smart
// card"; a second later the card is inserted (tests/vcard/lab.sh insert).
// An independent PC/SC observer thread records when pcscd reports the card;
// the conversation records when the module asks for the PIN. The latency is
// the difference: helper wake-up + OpenSC token listing + certificate parse
// + pairing lookup, everything the user waits for after the card is in.
//
// usage: wait_bench LAB_SH PAM_DIR SERVICE USER RUNS
#include <PCSC/winscard.h>
#include <security/pam_appl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct RunState {
  std::atomic<bool> waiting_shown{false};
  Clock::time_point prompt_at{};
};

int Converse(int n, const struct pam_message** msgs, struct pam_response** resp, void* data) {
  auto* st = static_cast<RunState*>(data);
  auto* replies = static_cast<pam_response*>(calloc(static_cast<size_t>(n), sizeof(pam_response)));
  for (int i = 0; i < n; ++i) {
    if (msgs[i]->msg_style == PAM_TEXT_INFO && strstr(msgs[i]->msg, "Insert your smart card")) {
      st->waiting_shown = true;
    }
    if (msgs[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
      st->prompt_at = Clock::now();
      replies[i].resp = strdup("123456");
    }
  }
  *resp = replies;
  return PAM_SUCCESS;
}

void NoDelay(int, unsigned, void*) {}

// WaitPresent blocks until pcscd reports a card in reader; returns the time.
Clock::time_point WaitPresent(const char* reader) {
  SCARDCONTEXT ctx;
  if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, nullptr, nullptr, &ctx) != SCARD_S_SUCCESS) return {};
  SCARD_READERSTATE st{};
  st.szReader = reader;
  st.dwCurrentState = SCARD_STATE_UNAWARE;
  for (;;) {
    LONG rv = SCardGetStatusChange(ctx, 10000, &st, 1);
    if (rv != SCARD_S_SUCCESS) break;
    if (st.dwEventState & SCARD_STATE_PRESENT) {
      auto t = Clock::now();
      SCardReleaseContext(ctx);
      return t;
    }
    st.dwCurrentState = st.dwEventState & ~SCARD_STATE_CHANGED;
  }
  SCardReleaseContext(ctx);
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: wait_bench LAB_SH PAM_DIR SERVICE USER RUNS\n");
    return 2;
  }
  std::string lab = std::string("bash ") + argv[1];
  int runs = atoi(argv[5]);
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    if (system((lab + " remove >/dev/null").c_str()) != 0) return 1;
    RunState st;
    struct pam_conv conv {Converse, &st};
    pam_handle_t* pamh = nullptr;
    if (pam_start_confdir(argv[3], argv[4], &conv, argv[2], &pamh) != PAM_SUCCESS) return 1;
    pam_set_item(pamh, PAM_FAIL_DELAY, reinterpret_cast<const void*>(&NoDelay));
    Clock::time_point present_at{};
    std::thread observer([&] {
      while (!st.waiting_shown) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      std::this_thread::sleep_for(std::chrono::seconds(1));
      std::thread pcsc([&] { present_at = WaitPresent("Virtual PCD 00 00"); });
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // observer is blocking in pcscd
      if (system((lab + " insert >/dev/null").c_str()) != 0) fprintf(stderr, "insert failed\n");
      pcsc.join();
    });
    int rc = pam_authenticate(pamh, 0);
    observer.join();
    pam_end(pamh, rc);
    if (rc != PAM_SUCCESS || present_at == Clock::time_point{}) {
      fprintf(stderr, "run %d: pam_authenticate=%d\n", r, rc);
      return 1;
    }
    double d = std::chrono::duration<double, std::milli>(st.prompt_at - present_at).count();
    ms.push_back(d);
    printf("run %2d: card reported by pcscd -> PIN prompt: %6.1f ms\n", r + 1, d);
  }
  std::sort(ms.begin(), ms.end());
  printf("insertion -> proceeding: median %.1f ms, min %.1f ms, max %.1f ms over %d runs (goal: < 100 ms)\n",
         ms[ms.size() / 2], ms.front(), ms.back(), runs);
  return 0;
}
