// The catalog, templates and node.yaml the Node1 component tests run storm-roled's library on:
// alpha (two tiers, a template), beta, gamma (a quorum member), broken (its unit never starts).
#pragma once

#include <stormnode/common/temp_dir.hpp>

#include <filesystem>

namespace stormnode::roles::testing {

inline void write_test_catalog(const std::filesystem::path& dir) {
    std::filesystem::create_directories(dir / "catalog");
    std::filesystem::create_directories(dir / "catalog" / "templates" / "alpha");
    write_file_atomic(dir / "catalog" / "alpha.yaml", R"(name: alpha
kind: role
description: Test role with two tiers.
packages: [alpha]
units:
  - {name: alpha-db.service, package: alpha}
  - {name: alpha-api.service, package: alpha}
tiers:
  - [alpha-db.service]
  - [alpha-api.service]
healthy_when:
  required: [alpha-db.service, alpha-api.service]
config:
  - {path: /etc/alpha/alpha.conf, template: alpha/alpha.conf.mustache, mode: "0640"}
)");
    write_file_atomic(dir / "catalog" / "beta.yaml", R"(name: beta
kind: role
description: Another test role.
packages: [beta]
units:
  - {name: beta.service, package: beta}
tiers:
  - [beta.service]
healthy_when:
  required: [beta.service]
)");
    write_file_atomic(dir / "catalog" / "gamma.yaml", R"(name: gamma
kind: role
description: A test role whose members vote for quorum.
packages: [gamma]
units:
  - {name: gamma.service, package: gamma}
tiers:
  - [gamma.service]
healthy_when:
  required: [gamma.service]
cluster:
  quorum_member: true
)");
    write_file_atomic(dir / "catalog" / "broken.yaml", R"(name: broken
kind: role
description: A test role whose unit never starts.
packages: [broken]
units:
  - {name: broken.service, package: broken}
tiers:
  - [broken.service]
healthy_when:
  required: [broken.service]
)");
    write_file_atomic(
        dir / "catalog" / "templates" / "alpha" / "alpha.conf.mustache", "host={{hostname}} zone={{zone}}\n");
    write_file_atomic(dir / "node.yaml", "roles: [alpha]\nhostname: node7\nzone: z1\n");
}

}  // namespace stormnode::roles::testing
