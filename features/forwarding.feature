Feature: The client certificate is forwarded to the gateway behind the load balancer
  An API gateway behind a TLS-terminating load balancer (WSO2 API Manager,
  for one) reads the caller's certificate from a header: URL-encoded PEM,
  under a configurable name. It must be exactly the certificate the caller
  presented, and absent when the caller presented none.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"

  @C14 @mandatory @backend-view
  Scenario: The presented leaf is forwarded URL-encoded in the default header
    Given the load balancer requires client certificates
    When the partner calls GET /echo with the certificate "partner-a" and its chain
    Then the response status is 200
    And the backend received the certificate of "partner-a" URL-encoded in the header "X-WSO2-CLIENT-CERTIFICATE"

  @C14 @mandatory @reconfigures @backend-view
  Scenario: The certificate header name is configurable
    Given the load balancer requires client certificates
    And the certificate header is "X-Client-Certificate"
    When the partner calls GET /echo with the certificate "partner-a"
    Then the response status is 200
    And the backend received the certificate of "partner-a" URL-encoded in the header "X-Client-Certificate"
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify  | SUCCESS                          |
      | X-SSL-Client-DN      | {subject of "partner-a"}         |
      | X-SSL-Issuer         | {issuer of "partner-a"}          |
      | X-SSL-Client-Serial  | {serial of "partner-a"}          |
      | X-Client-Certificate | {certificate of "partner-a"}     |

  @C14 @optional @backend-view
  Scenario: No certificate header when the caller presented no certificate
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo without a certificate
    Then the response status is 200
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify | NONE |
