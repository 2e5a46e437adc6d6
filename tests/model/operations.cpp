#include "operations.hpp"

#include <array>
#include <sstream>

namespace model {

namespace {

// Share of each operation, per 10,000 (the rest goes to on-time callbacks).
struct Weights {
  std::uint64_t pay = 2300;
  std::uint64_t pay_with_key = 500;
  std::uint64_t pay_replay = 350;
  std::uint64_t pay_key_reused = 120;
  std::uint64_t pay_same_key_at_once = 80;
  std::uint64_t pay_racing_callback = 150;
  std::uint64_t pay_invalid = 180;
  std::uint64_t pay_burst = 100;
  std::uint64_t callback_burst = 250;
  std::uint64_t open_account = 150;
  std::uint64_t callback_late = 350;
  std::uint64_t callback_unknown = 100;
  std::uint64_t callback_invalid = 100;
  std::uint64_t recalculate = 350;
  std::uint64_t recalculate_invalid = 50;
  std::uint64_t restart = 15;
  std::uint64_t clock_step = 15;
  std::uint64_t outage_begin = 25;
};
constexpr Weights kWeights;

// An outage ends with this chance per operation, and after this many at the latest.
constexpr std::uint64_t kOutageEndPerMille = 40;
constexpr std::size_t kOutageMaxOps = 80;

constexpr std::array<const char*, 8> kMerchants = {
    "Blue Bottle",
    "Café Ünïcødé",
    "東京の喫茶店",
    "𝄞 Music & \"Quotes\" \\ backslash",
    "tab\there",
    "a",
    "Ω",
    "Joe's 🍕 Pizza",
};

std::string repeat(std::string_view unit, std::size_t times) {
  std::string out;
  out.reserve(unit.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

const char* to_string(OpKind kind) {
  switch (kind) {
    case OpKind::open_account:
      return "open_account";
    case OpKind::pay:
      return "pay";
    case OpKind::pay_replay:
      return "pay_replay";
    case OpKind::pay_key_reused:
      return "pay_key_reused";
    case OpKind::pay_same_key_at_once:
      return "pay_same_key_at_once";
    case OpKind::pay_racing_callback:
      return "pay_racing_callback";
    case OpKind::pay_invalid:
      return "pay_invalid";
    case OpKind::callback:
      return "callback";
    case OpKind::callback_unknown:
      return "callback_unknown";
    case OpKind::callback_invalid:
      return "callback_invalid";
    case OpKind::pay_burst:
      return "pay_burst";
    case OpKind::callback_burst:
      return "callback_burst";
    case OpKind::recalculate:
      return "recalculate";
    case OpKind::recalculate_invalid:
      return "recalculate_invalid";
    case OpKind::restart:
      return "restart";
    case OpKind::clock_step:
      return "clock_step";
    case OpKind::outage_begin:
      return "outage_begin";
    case OpKind::outage_end:
      return "outage_end";
  }
  return "?";
}

std::string ProviderStep::describe() const {
  switch (kind) {
    case Kind::hang:
      return "hang";
    case Kind::close:
      return "close";
    case Kind::reply:
      break;
  }
  return std::to_string(status);
}

std::string Op::describe(const Ledger& ledger) const {
  std::ostringstream out;
  out << to_string(kind);
  auto account_text = [&](std::size_t index) {
    return index < ledger.accounts.size() ? std::to_string(ledger.accounts[index].id)
                                          : "#" + std::to_string(index);
  };
  auto payment_text = [&](std::size_t index) {
    std::string text = "payment #" + std::to_string(index);
    if (index < ledger.payments.size() && ledger.payments[index].id != 0) {
      text += " (" + std::to_string(ledger.payments[index].id) + ")";
    }
    return text;
  };
  switch (kind) {
    case OpKind::pay:
    case OpKind::pay_replay:
    case OpKind::pay_key_reused:
    case OpKind::pay_same_key_at_once:
    case OpKind::pay_racing_callback: {
      out << " account " << account_text(account) << " amount " << amount_cents << " merchant "
          << quoted(merchant_name);
      if (!idempotency_key.empty()) out << " key " << idempotency_key;
      if (body_in_another_form) out << " (body reordered, extra field)";
      out << " provider:";
      for (const auto& u : unknowns) out << ' ' << u.describe();
      out << ' ' << verdict.describe();
      for (const auto& cb : callbacks) {
        out << "; racing callback amount " << cb.amount_cents << " status "
            << (cb.form == CallbackSpec::StatusForm::given  ? cb.status
                : cb.form == CallbackSpec::StatusForm::null ? "null"
                                                            : "(none)");
      }
      break;
    }
    case OpKind::pay_invalid:
      out << " (" << invalid_what << ") expecting " << expected_status << ": " << raw_body;
      if (!idempotency_key.empty()) out << " key " << idempotency_key;
      break;
    case OpKind::pay_burst:
      for (const auto& pay : pays) {
        out << " [account " << account_text(pay.account) << " amount " << pay.amount_cents
            << " merchant " << quoted(pay.merchant_name) << "]";
      }
      out << " provider:";
      for (const auto& u : unknowns) out << ' ' << u.describe();
      out << ' ' << verdict.describe();
      break;
    case OpKind::callback:
    case OpKind::callback_burst:
      for (const auto& cb : callbacks) {
        out << ' ' << payment_text(cb.payment) << " amount " << cb.amount_cents << " status "
            << (cb.form == CallbackSpec::StatusForm::given  ? cb.status
                : cb.form == CallbackSpec::StatusForm::null ? "null"
                                                            : "(none)")
            << (cb.id_as_string ? " id as string" : "") << (cb.twice ? " twice" : "");
      }
      break;
    case OpKind::callback_unknown:
      out << " id " << unknown_id;
      break;
    case OpKind::callback_invalid:
      out << ": " << raw_callback;
      break;
    case OpKind::recalculate:
      out << " window " << window_seconds << " s form " << static_cast<int>(recalc_form);
      break;
    case OpKind::recalculate_invalid:
      out << " window '" << invalid_window << "'";
      break;
    case OpKind::restart:
      out << (kill9 ? " kill -9" : " SIGTERM");
      break;
    case OpKind::clock_step:
      out << " +" << step_seconds << " s, " << (kill9 ? "kill -9" : "SIGTERM");
      break;
    case OpKind::outage_begin:
      out << " first sends " << outage_first.describe() << ", copies " << outage_copies.describe();
      break;
    case OpKind::open_account:
    case OpKind::outage_end:
      break;
  }
  return out.str();
}

Generator::Generator(std::uint64_t seed, Timing timing) : rng_(seed), timing_(timing) {}

std::size_t Generator::pick_account(const Ledger& ledger) {
  // Account 1 often (the brief's single account), recent accounts next, any account otherwise.
  const std::size_t n = ledger.accounts.size();
  const auto roll = below(10);
  if (roll < 4 || n == 1) return 0;
  if (roll < 7) return n - 1 - static_cast<std::size_t>(below(std::min<std::size_t>(n, 5)));
  return static_cast<std::size_t>(below(n));
}

std::int64_t Generator::payment_amount() {
  const std::int64_t sign = chance(700) ? -1 : 1;
  const auto roll = below(100);
  std::int64_t magnitude = 0;
  if (roll < 5) {
    magnitude = 1;
  } else if (roll < 10) {
    magnitude = kMaxCents;  // the bound itself is valid
  } else if (roll < 13) {
    magnitude = kMaxCents - 1;
  } else if (roll < 65) {
    magnitude = between(1, 100'000);
  } else if (roll < 90) {
    magnitude = between(1, 1'000'000'000);
  } else {
    magnitude = between(1, kMaxCents);
  }
  return sign * magnitude;
}

std::int64_t Generator::callback_amount(std::int64_t current) {
  const auto roll = below(100);
  if (roll < 35) return current;
  if (roll < 55) {
    const std::int64_t next = current + between(-1000, 1000);
    return next > kMaxCents || next < -kMaxCents ? current : next;
  }
  if (roll < 63) return 0;         // may be 0 (SPEC 3)
  if (roll < 71) return -current;  // a change of sign
  if (roll < 75) return chance(500) ? kMaxCents : -kMaxCents;
  return between(-kMaxCents, kMaxCents);
}

std::string Generator::merchant() {
  const auto roll = below(100);
  if (roll < 3) return repeat("x", 200);  // 200 characters: the limit
  if (roll < 5) return repeat("é", 200);  // 200 characters, 400 bytes
  if (roll < 6) return repeat("😀", 200);  // 200 characters, 800 bytes
  return kMerchants.at(below(kMerchants.size()));
}

std::string Generator::new_key() {
  if (!refused_keys_.empty() && chance(300)) {
    std::string key = refused_keys_.back();
    refused_keys_.pop_back();
    return key;
  }
  ++keys_made_;
  // Printable ASCII, up to 255 characters (SPEC 3); one in twenty is that long.
  std::string key = "key-" + std::to_string(keys_made_);
  if (chance(50)) key += repeat("~", 255 - key.size());
  return key;
}

ProviderStep Generator::verdict_after_unknowns() {
  const auto roll = below(10);
  if (roll < 5) return {ProviderStep::Kind::reply, 201};
  if (roll < 8) return {ProviderStep::Kind::reply, 409};  // to a copy: the provider has it
  return {ProviderStep::Kind::reply, chance(500) ? 400U : 422U};
}

void Generator::provider_script(Op& op) {
  op.unknowns.clear();
  if (outage_) {
    // Every answer during the outage leaves the outcome unknown; this is the one after it.
    op.verdict = verdict_after_unknowns();
    return;
  }
  const auto roll = below(100);
  if (roll < 70) {
    const auto code = below(10);
    op.verdict = {ProviderStep::Kind::reply, code < 8 ? 201U : code < 9 ? 200U : 202U};
    return;
  }
  if (roll < 84) {
    constexpr std::array<unsigned, 5> kRejections = {400, 402, 404, 409, 422};
    op.verdict = {ProviderStep::Kind::reply, kRejections.at(below(kRejections.size()))};
    return;
  }
  const auto count = 1 + below(3);
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto kind = below(100);
    ProviderStep step;
    if (kind < 40) {
      step = {ProviderStep::Kind::reply, 503};
    } else if (kind < 52) {
      step = {ProviderStep::Kind::reply, 500};
    } else if (kind < 58) {
      step = {ProviderStep::Kind::reply, 429};
    } else if (kind < 62) {
      step = {ProviderStep::Kind::reply, 408};
    } else if (kind < 72) {
      step = {ProviderStep::Kind::reply, chance(500) ? 401U : 403U};  // our configuration
    } else if (kind < 76) {
      step = {ProviderStep::Kind::reply, 302};
    } else if (kind < 99 || chance(500)) {
      step = {ProviderStep::Kind::close, 0};
    } else {
      // Rare: the service waits out its provider timeout (500 ms) for each.
      step = {ProviderStep::Kind::hang, 0};
    }
    op.unknowns.push_back(step);
  }
  // A failure on a pooled connection is followed at once by a copy on a fresh one, so after a
  // close or a hang the next answer is an unknown one too: then the first response is 202
  // whichever connection the first send took.
  if (op.unknowns.back().kind != ProviderStep::Kind::reply) {
    op.unknowns.push_back({ProviderStep::Kind::reply, 503});
  }
  op.verdict = verdict_after_unknowns();
}

Op Generator::pay(const Ledger& ledger) {
  Op op;
  op.kind = OpKind::pay;
  op.account = pick_account(ledger);
  op.amount_cents = payment_amount();
  op.merchant_name = merchant();
  provider_script(op);
  return op;
}

Op Generator::pay_with_key(const Ledger& ledger, OpKind kind) {
  Op op = pay(ledger);
  op.kind = kind;
  if (kind == OpKind::pay || kind == OpKind::pay_same_key_at_once || ledger.keys.empty()) {
    if (kind != OpKind::pay_same_key_at_once) op.kind = OpKind::pay;
    op.idempotency_key = new_key();
    return op;
  }
  auto it = ledger.keys.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(below(ledger.keys.size())));
  op.idempotency_key = it->first;
  const IdempotencyKey& key = it->second;
  // The body of the key's first request...
  for (std::size_t a = 0; a < ledger.accounts.size(); ++a) {
    if (ledger.accounts[a].id == key.account_id) op.account = a;
  }
  op.amount_cents = key.amount_cents;
  op.merchant_name = key.merchant_name;
  if (kind == OpKind::pay_replay) {
    op.body_in_another_form = chance(300);
  } else {
    // ...or another one: one field differs.
    const auto which = below(3);
    if (which == 0) {
      // Another valid amount: never 0, never beyond the bound.
      op.amount_cents = key.amount_cents + 1;
      if (op.amount_cents == 0 || op.amount_cents > kMaxCents) op.amount_cents -= 2;
    } else if (which == 1) {
      op.merchant_name = key.merchant_name + "!";
      if (op.merchant_name.size() > 200) op.merchant_name = "another merchant";
    } else if (ledger.accounts.size() > 1) {
      op.account = (op.account + 1) % ledger.accounts.size();
    } else {
      op.amount_cents = -key.amount_cents;
    }
  }
  return op;
}

Op Generator::pay_racing(const Ledger& ledger) {
  Op op = pay(ledger);
  op.kind = OpKind::pay_racing_callback;
  if (chance(300)) op.idempotency_key = new_key();
  op.unknowns.clear();
  // Mostly a 2xx; sometimes a 4xx, which rejects nothing once a callback proved the provider
  // holds the movement (docs/decisions.md): the answer is the payment as it is, 201.
  const auto answer = below(10);
  op.verdict = {ProviderStep::Kind::reply, answer < 6   ? 201U
                                           : answer < 8 ? 200U
                                           : answer < 9 ? 422U
                                                        : 409U};
  const std::size_t payment = ledger.payments.size();  // the one this operation makes
  const auto count = 1 + below(2);
  std::int64_t amount = op.amount_cents;
  for (std::uint64_t i = 0; i < count; ++i) {
    CallbackSpec cb;
    cb.payment = payment;
    cb.amount_cents = callback_amount(amount);
    amount = cb.amount_cents;
    const auto roll = below(100);
    if (roll < 40) {
      cb.status = "posted";
    } else if (roll < 65) {
      cb.status = "pending";
    } else if (roll < 80) {
      cb.form = CallbackSpec::StatusForm::missing;
    } else if (roll < 90) {
      cb.status = chance(500) ? "failed" : "returned";
    } else {
      // The provider's own token for "not yet": the answer to the request that arrives after
      // it must not overwrite what the callback said.
      cb.status = "submitting";
    }
    cb.id_as_string = chance(300);
    op.callbacks.push_back(cb);
  }
  return op;
}

Op Generator::pay_invalid(const Ledger& ledger) {
  Op op;
  op.kind = OpKind::pay_invalid;
  const auto account_id = ledger.accounts.at(pick_account(ledger)).id;
  const std::string account = std::to_string(account_id);
  const auto roll = below(15);
  auto body = [&](const std::string& amount, const std::string& merchant_json,
                  const std::string& account_json) {
    return "{\"account_id\":" + account_json + ",\"amount_cents\":" + amount +
           ",\"merchant_name\":" + merchant_json + "}";
  };
  switch (roll) {
    case 0:
      op.invalid_what = "amount 0";
      op.raw_body = body("0", "\"x\"", account);
      break;
    case 1:
      op.invalid_what = "amount above 10^12";
      op.raw_body = body("1000000000001", "\"x\"", account);
      break;
    case 2:
      op.invalid_what = "amount below -10^12";
      op.raw_body = body("-1000000000001", "\"x\"", account);
      break;
    case 3:
      op.invalid_what = "amount as a string";
      op.raw_body = body("\"100\"", "\"x\"", account);
      break;
    case 4:
      op.invalid_what = "amount with a fraction";
      op.raw_body = body("1.5", "\"x\"", account);
      break;
    case 5:
      op.invalid_what = "empty merchant";
      op.raw_body = body("100", "\"\"", account);
      break;
    case 6:
      op.invalid_what = "merchant of 201 characters";
      op.raw_body = body("100", "\"" + repeat("é", 201) + "\"", account);
      break;
    case 7:
      op.invalid_what = "merchant not a string";
      op.raw_body = body("100", "42", account);
      break;
    case 8:
      op.invalid_what = "account 0";
      op.raw_body = body("100", "\"x\"", "0");
      break;
    case 9:
      op.invalid_what = "duplicated key";
      op.raw_body = "{\"account_id\":" + account +
                    ",\"amount_cents\":100,\"amount_cents\":-100,\"merchant_name\":\"x\"}";
      break;
    case 10:
      op.invalid_what = "not JSON";
      op.raw_body = "{\"account_id\":" + account + ",";
      break;
    case 11:
      op.invalid_what = "missing amount";
      op.raw_body = "{\"account_id\":" + account + ",\"merchant_name\":\"x\"}";
      break;
    case 12:
      op.invalid_what = "a JSON array";
      op.raw_body = "[1,2]";
      break;
    default:
      op.invalid_what = "an account that does not exist";
      op.raw_body = body("100", "\"x\"", std::to_string(9'000'000'000'000 + below(1000)));
      op.expected_status = 404;
      break;
  }
  if (chance(400)) {
    op.idempotency_key = new_key();
    refused_keys_.push_back(op.idempotency_key);  // never stored: free for a real payment
  }
  return op;
}

CallbackSpec Generator::callback_for(const Ledger& ledger, std::size_t payment) {
  const Payment& p = ledger.payments.at(payment);
  CallbackSpec cb;
  cb.payment = payment;
  cb.amount_cents = callback_amount(p.amount_cents);
  const auto roll = below(100);
  if (roll < 36) {
    cb.status = "posted";
  } else if (roll < 60) {
    cb.status = "pending";
  } else if (roll < 72) {
    cb.form = CallbackSpec::StatusForm::missing;
  } else if (roll < 76) {
    cb.form = CallbackSpec::StatusForm::null;
  } else if (roll < 86) {
    constexpr std::array<const char*, 3> kTerminal = {"failed", "returned", "rejected"};
    cb.status = kTerminal.at(below(kTerminal.size()));
  } else if (roll < 88) {
    cb.status = "submitting";
  } else if (roll < 90) {
    cb.status = repeat("z", 32);  // the longest token
  } else {
    // Any lower-case token is stored as given.
    const auto length = 1 + below(12);
    for (std::uint64_t i = 0; i < length; ++i) {
      cb.status += chance(100) ? '_' : static_cast<char>('a' + below(26));
    }
  }
  cb.id_as_string = chance(300);
  cb.twice = chance(150);
  return cb;
}

Op Generator::callback(const Ledger& ledger, bool late) {
  Op op;
  op.kind = OpKind::callback;
  const std::size_t first = ledger.epoch_first_payment;
  const std::size_t n = ledger.payments.size();
  std::size_t payment = 0;
  if (late && first > 0) {
    payment = static_cast<std::size_t>(below(first));
  } else if (n > first) {
    // On time: recent payments more often (the provider calls back soon after the request).
    payment = chance(600)
                  ? n - 1 - static_cast<std::size_t>(below(std::min<std::size_t>(n - first, 8)))
                  : first + static_cast<std::size_t>(below(n - first));
  } else {
    return pay(ledger);
  }
  op.callbacks.push_back(callback_for(ledger, payment));
  return op;
}

Op Generator::callback_invalid(const Ledger& ledger) {
  Op op;
  op.kind = OpKind::callback_invalid;
  // The runner writes the payment's id where the body says ID (ids are the service's to make).
  CallbackSpec target;
  target.payment =
      ledger.payments.empty() ? 0 : static_cast<std::size_t>(below(ledger.payments.size()));
  op.callbacks.push_back(target);
  const auto roll = below(8);
  switch (roll) {
    case 0:
      op.raw_callback = R"({"money_movement_id":ID,"status":"posted"})";  // no amount
      break;
    case 1:
      op.raw_callback =
          R"({"money_movement_id":ID,"amount_cents":1000000000001,"status":"posted"})";
      break;
    case 2:
      op.raw_callback = R"({"money_movement_id":ID,"amount_cents":100,"status":"Posted"})";
      break;
    case 3:
      op.raw_callback =
          R"({"money_movement_id":ID,"amount_cents":100,"status":"abcdefghijklmnopqrstuvwxyzabcdefg"})";
      break;
    case 4:
      op.raw_callback = R"({"money_movement_id":ID,"amount_cents":100,"status":5})";
      break;
    case 5:
      op.raw_callback = R"({"money_movement_id":"ID x","amount_cents":100,"status":"posted"})";
      break;
    case 6:
      op.raw_callback = R"({"money_movement_id":0,"amount_cents":100,"status":"posted"})";
      break;
    default:
      op.raw_callback = R"({"money_movement_id":ID,"amount_cents":100.5,"status":"posted"})";
      break;
  }
  return op;
}

Op Generator::pay_burst(const Ledger& ledger) {
  Op op = pay(ledger);
  op.kind = OpKind::pay_burst;
  const auto count = 2 + below(5);
  // Often all on one account: its row is where concurrent writes meet.
  const bool one_account = chance(600);
  for (std::uint64_t i = 0; i < count; ++i) {
    PaySpec spec{.account = one_account ? op.account : pick_account(ledger),
                 .amount_cents = 0,
                 .merchant_name = merchant()};
    for (bool distinct = false; !distinct;) {
      spec.amount_cents = payment_amount();
      distinct = true;
      for (const auto& other : op.pays)
        distinct = distinct && other.amount_cents != spec.amount_cents;
    }
    op.pays.push_back(spec);
  }
  return op;
}

Op Generator::callback_burst(const Ledger& ledger) {
  Op op;
  op.kind = OpKind::callback_burst;
  const std::size_t n = ledger.payments.size();
  const std::size_t first = ledger.epoch_first_payment;
  if (n == 0) return pay(ledger);
  const auto count = 2 + below(5);
  std::vector<std::size_t> chosen;
  for (std::uint64_t i = 0; i < count; ++i) {
    // Mostly payments of this epoch (on time), now and then an older one (late).
    std::size_t payment = n > first && chance(900)
                              ? first + static_cast<std::size_t>(below(n - first))
                              : static_cast<std::size_t>(below(n));
    bool taken = false;
    for (const auto c : chosen) taken = taken || c == payment;
    if (!taken) chosen.push_back(payment);
  }
  for (const auto payment : chosen) {
    CallbackSpec cb = callback_for(ledger, payment);
    cb.twice = false;
    op.callbacks.push_back(cb);
  }
  if (chance(350)) {
    // Two callbacks for one payment at once: they apply one after the other, in the order the
    // service received them (its history tells which), never mixed.
    CallbackSpec second = callback_for(ledger, chosen.front());
    second.twice = false;
    if (second.amount_cents == op.callbacks.front().amount_cents) {
      second.amount_cents =
          second.amount_cents > 0 ? second.amount_cents - 1 : second.amount_cents + 1;
    }
    op.callbacks.push_back(second);
  }
  return op;
}

Op Generator::recalculate() {
  Op op;
  op.kind = OpKind::recalculate;
  const auto roll = below(100);
  const std::int64_t step = timing_.step_seconds;
  if (roll < 20) {
    op.window_seconds = 0;
  } else if (roll < 35) {
    op.window_seconds = between(1, 5);  // inside an epoch: the test times it, or learns it
  } else if (roll < 55) {
    op.window_seconds = step / 2;  // back to the gap before this epoch
  } else if (roll < 70) {
    op.window_seconds = step / 2 + step * between(1, 3);
  } else if (roll < 80) {
    op.window_seconds = 315'360'000;  // 10 years: the largest window
  } else {
    op.window_seconds = 10;
  }
  const auto form = below(5);
  op.recalc_form = static_cast<Op::RecalcForm>(form);
  if (op.recalc_form == Op::RecalcForm::default_window) op.window_seconds = 10;
  return op;
}

Op Generator::next(const Ledger& ledger) {
  if (outage_) {
    ++outage_ops_;
    if (outage_ops_ >= kOutageMaxOps || chance(kOutageEndPerMille)) {
      outage_ = false;
      Op op;
      op.kind = OpKind::outage_end;
      return op;
    }
  }
  const Weights& w = kWeights;
  std::uint64_t roll = below(10'000);
  auto take = [&roll](std::uint64_t weight) {
    if (roll < weight) return true;
    roll -= weight;
    return false;
  };
  if (take(w.pay)) return pay(ledger);
  if (take(w.pay_with_key)) return pay_with_key(ledger, OpKind::pay);
  if (take(w.pay_replay)) return pay_with_key(ledger, OpKind::pay_replay);
  if (take(w.pay_key_reused)) return pay_with_key(ledger, OpKind::pay_key_reused);
  if (take(w.pay_same_key_at_once)) {
    return outage_ ? pay(ledger) : pay_with_key(ledger, OpKind::pay_same_key_at_once);
  }
  if (take(w.pay_racing_callback)) return outage_ ? pay(ledger) : pay_racing(ledger);
  if (take(w.pay_invalid)) return pay_invalid(ledger);
  if (take(w.pay_burst)) return pay_burst(ledger);
  if (take(w.callback_burst)) return callback_burst(ledger);
  if (take(w.open_account)) {
    Op op;
    op.kind = OpKind::open_account;
    return op;
  }
  if (take(w.callback_late)) return callback(ledger, /*late=*/true);
  if (take(w.callback_unknown)) {
    Op op;
    op.kind = OpKind::callback_unknown;
    // Ids are milliseconds since 2024 shifted left by 12 bits: these small ones are never made.
    op.unknown_id = between(1, 1'000'000);
    return op;
  }
  if (take(w.callback_invalid)) return callback_invalid(ledger);
  if (take(w.recalculate)) return recalculate();
  if (take(w.recalculate_invalid)) {
    Op op;
    op.kind = OpKind::recalculate_invalid;
    constexpr std::array<const char*, 5> kInvalid = {"-1", "315360001", "1.5", "ten", ""};
    op.invalid_window = kInvalid.at(below(kInvalid.size()));
    return op;
  }
  if (take(w.restart)) {
    Op op;
    op.kind = OpKind::restart;
    op.kill9 = chance(500);
    return op;
  }
  if (take(w.clock_step)) {
    Op op;
    op.kind = OpKind::restart;
    op.kill9 = chance(500);
    // Only while every payment has its verdict: a copy sent after the step would open a new
    // window at a moment the test cannot know.
    if (!outage_) {
      op.kind = OpKind::clock_step;
      op.step_seconds = timing_.step_seconds;
    }
    return op;
  }
  if (take(w.outage_begin)) {
    if (outage_) return pay(ledger);
    outage_ = true;
    outage_ops_ = 0;
    Op op;
    op.kind = OpKind::outage_begin;
    const auto kind = below(10);
    if (kind < 5) {
      op.outage_first = op.outage_copies = {ProviderStep::Kind::reply, 503};
    } else if (kind < 7) {
      op.outage_first = op.outage_copies = {ProviderStep::Kind::close, 0};
    } else if (kind < 8) {
      op.outage_first = op.outage_copies = {ProviderStep::Kind::reply, 401};
    } else {
      // Copies hang until the service gives up on them; first sends are refused at once, so
      // the test does not wait out a timeout for each new payment.
      op.outage_first = {ProviderStep::Kind::reply, 500};
      op.outage_copies = {ProviderStep::Kind::hang, 0};
    }
    return op;
  }
  return callback(ledger, /*late=*/false);
}

}  // namespace model
