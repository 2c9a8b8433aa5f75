#include "stormnode/cluster/secret_file.hpp"

#include <stormnode/common/error.hpp>
#include <stormnode/common/temp_dir.hpp>

#include <pwd.h>
#include <unistd.h>

namespace stormnode::roles {

const std::string& cluster_secret(
    const std::map<std::string, std::string>& secrets, const Cluster& cluster, const std::string& name) {
    const auto it = secrets.find(name);
    if (it == secrets.end()) {
        throw Error(
            Errc::invalid_input, cluster.secrets_path().string() + ": secret '" + name + "' is missing");
    }
    return it->second;
}

void write_secret_file(
    const std::filesystem::path& path,
    const std::string& content,
    unsigned mode,
    const std::string& user,
    bool live) {
    std::filesystem::create_directories(path.parent_path());
    write_file_atomic(path, content, mode);
    if (!live) {
        return;
    }
    const passwd* account = ::getpwnam(user.c_str());
    if (account == nullptr) {
        throw Error(Errc::not_found, "user '" + user + "' (owner of " + path.string() + ") does not exist");
    }
    check_errno(
        ::chown(path.c_str(), account->pw_uid, account->pw_gid), "changing the owner of " + path.string());
}

}  // namespace stormnode::roles
