#include "ports/payment_queue.h"

namespace boxoffice {

std::string_view to_string(PaymentJobKind kind) {
  return kind == PaymentJobKind::charge ? "charge" : "refund";
}

}  // namespace boxoffice
