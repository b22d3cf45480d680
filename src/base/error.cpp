#include "base/error.h"

namespace runnel {

Error::Error(std::string_view component, std::string_view message)
    : std::runtime_error(str_cat("[", component, "] ", message)),
      component_(component),
      message_(message) {}

}  // namespace runnel
