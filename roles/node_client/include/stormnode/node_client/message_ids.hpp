// Journal MESSAGE_IDs of storm-roled's milestones: fixed, so `journalctl MESSAGE_ID=...` finds them.
#pragma once

#include <string_view>

namespace stormnode::roles::message_id {

inline constexpr std::string_view kRoleHealthy = "79e80d9d7df24d21be38309c7d8cdfb5";
inline constexpr std::string_view kRoleDegraded = "208446a13b5040008a69dc14637e56fb";
inline constexpr std::string_view kRoleFailed = "9e4418d68d2f4315bdfe22076a079244";
inline constexpr std::string_view kRoleSwitched = "0702772b4d07404db9845e585a63c339";
inline constexpr std::string_view kUnitRestarted = "09c9251a2e064cf0907c8e386e548ba1";
inline constexpr std::string_view kRoleStarting = "b1c75c6c47dd4023b9e792e7c4b86dfc";

}  // namespace stormnode::roles::message_id
