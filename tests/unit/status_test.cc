#include "core/status.h"

#include <security/pam_appl.h>

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace sc::core {
namespace {

constexpr Code kAllCodes[] = {Code::kOk,        Code::kUnavailable, Code::kUserUnknown,
                              Code::kDenied,    Code::kCredInsufficient, Code::kLocked,
                              Code::kConfig,    Code::kInternal,    Code::kUsage};

TEST(PamResultTest, OnlyOkIsSuccess) {
  for (Code code : kAllCodes) {
    EXPECT_EQ(PamResultFor(code).value == PAM_SUCCESS, code == Code::kOk) << CodeName(code);
  }
}

TEST(PamResultTest, NamesMatchValues) {
  const std::map<int, std::string> names = {
      {PAM_SUCCESS, "PAM_SUCCESS"},           {PAM_AUTHINFO_UNAVAIL, "PAM_AUTHINFO_UNAVAIL"},
      {PAM_USER_UNKNOWN, "PAM_USER_UNKNOWN"}, {PAM_AUTH_ERR, "PAM_AUTH_ERR"},
      {PAM_CRED_INSUFFICIENT, "PAM_CRED_INSUFFICIENT"}, {PAM_MAXTRIES, "PAM_MAXTRIES"},
      {PAM_SERVICE_ERR, "PAM_SERVICE_ERR"}};
  for (Code code : kAllCodes) {
    PamResult r = PamResultFor(code);
    ASSERT_EQ(names.count(r.value), 1u) << CodeName(code);
    EXPECT_EQ(std::string(r.name), names.at(r.value)) << CodeName(code);
  }
}

TEST(PamResultTest, EachCodeGetsItsPamCode) {
  EXPECT_EQ(PamResultFor(Code::kUnavailable).value, PAM_AUTHINFO_UNAVAIL);
  EXPECT_EQ(PamResultFor(Code::kUserUnknown).value, PAM_USER_UNKNOWN);
  EXPECT_EQ(PamResultFor(Code::kDenied).value, PAM_AUTH_ERR);
  EXPECT_EQ(PamResultFor(Code::kCredInsufficient).value, PAM_CRED_INSUFFICIENT);
  EXPECT_EQ(PamResultFor(Code::kLocked).value, PAM_MAXTRIES);
  EXPECT_EQ(PamResultFor(Code::kConfig).value, PAM_SERVICE_ERR);
  EXPECT_EQ(PamResultFor(Code::kInternal).value, PAM_SERVICE_ERR);
  EXPECT_EQ(PamResultFor(Code::kUsage).value, PAM_SERVICE_ERR);
}

}  // namespace
}  // namespace sc::core
