#include "cli/version.h"

#include "base/cpu.h"
#include "base/strings.h"
#include "kernels/cpu/dispatch.h"

namespace runnel::cli {

std::string version_text() {
  const auto& cpu = cpu_features();
  return str_cat("runnel ", RUNNEL_VERSION,
                 "\nkernels: ", kernels::cpu::isa_name(kernels::cpu::active_isa()),
                 " (cpu: ", cpu.brand.empty() ? cpu.vendor : cpu.brand, "; ", cpu.describe(), ")");
}

}  // namespace runnel::cli
