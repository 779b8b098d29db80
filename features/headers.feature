Feature: Identity headers reach the API, and callers cannot forge them
  On success the API behind the load balancer learns who called: the subject
  DN, the issuer DN and the serial number of the client certificate. Values
  of these headers sent by the caller itself never reach the API.

  Background:
    Given the "Partner Root CA" is a root CA
    And the "Partner Issuing CA" is an intermediate CA under the "Partner Root CA"
    And the "Unknown Root CA" is a root CA
    And the truststore holds "Partner Issuing CA", "Partner Root CA"
    And a client certificate "partner-a" issued by the "Partner Issuing CA"

  @C12 @mandatory @backend-view
  Scenario: A trusted caller's identity is forwarded
    Given the load balancer requires client certificates
    When the partner calls GET /echo with the certificate "partner-a"
    Then the response status is 200
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify       | SUCCESS                            |
      | X-SSL-Client-DN           | {subject of "partner-a"}           |
      | X-SSL-Issuer              | {issuer of "partner-a"}            |
      | X-SSL-Client-Serial       | {serial of "partner-a"}            |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"}       |

  @C12 @optional @backend-view
  Scenario: Optional mode forwards the same identity on success
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo with the certificate "partner-a"
    Then the response status is 200
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify       | SUCCESS                            |
      | X-SSL-Client-DN           | {subject of "partner-a"}           |
      | X-SSL-Issuer              | {issuer of "partner-a"}            |
      | X-SSL-Client-Serial       | {serial of "partner-a"}            |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"}       |

  @C13 @mandatory @backend-view
  Scenario: Headers forged by a trusted caller are replaced
    Given the load balancer requires client certificates
    And a client certificate "stranger" issued by the "Unknown Root CA"
    When the partner calls GET /echo with the certificate "partner-a" and the headers:
      | X-SSL-Client-Verify       | FORGED                        |
      | X-SSL-Client-DN           | CN=admin,O=Test Org           |
      | X-SSL-Issuer              | CN=Someone Else               |
      | X-SSL-Client-Serial       | 01                            |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "stranger"}   |
    Then the response status is 200
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify       | SUCCESS                            |
      | X-SSL-Client-DN           | {subject of "partner-a"}           |
      | X-SSL-Issuer              | {issuer of "partner-a"}            |
      | X-SSL-Client-Serial       | {serial of "partner-a"}            |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"}       |

  @C13 @optional @backend-view
  Scenario: A caller without a certificate cannot claim SUCCESS
    Given the load balancer accepts client certificates optionally
    When the partner calls GET /echo without a certificate and the headers:
      | X-SSL-Client-Verify       | SUCCESS                       |
      | X-SSL-Client-DN           | {subject of "partner-a"}      |
      | X-SSL-Issuer              | {issuer of "partner-a"}       |
      | X-SSL-Client-Serial       | {serial of "partner-a"}       |
      | X-WSO2-CLIENT-CERTIFICATE | {certificate of "partner-a"}  |
    Then the response status is 200
    And the backend saw exactly these client-certificate headers:
      | X-SSL-Client-Verify | NONE |

  @C13 @optional @backend-view @id:untrusted-claims-success
  Scenario: An untrusted caller cannot claim SUCCESS
    Given the load balancer accepts client certificates optionally
    And a client certificate "stranger" issued by the "Unknown Root CA"
    When the partner calls GET /echo with the certificate "stranger" and the headers:
      | X-SSL-Client-Verify | SUCCESS |
    Then the response status is 200
    And every request the backend received carries X-SSL-Client-Verify "FAILED"
