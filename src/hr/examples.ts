// Complete mappings for two common HR exports, shown by `roster import --help` and printed by
// `roster import --example-mapping NAME`. test/fixtures/hr holds the same files with an export of
// each shape, and a test imports them.

/** A Workday custom report of workers (the columns of its standard worker data source). */
export const WORKDAY_MAPPING = `# A Workday-shaped export (a custom report of workers) -> Employee. Workday carries no usernames:
# they are generated, first initial + last name, with a number when taken.
employeeId: Employee ID
username:
  generate: "{Legal First Name|first:1}{Legal Last Name}"
  maxLength: 20
  suffix: numeric
givenName: Legal First Name
familyName: Legal Last Name
email: Work Email
department: Supervisory Organization
title: Business Title
location: Location
startDate:
  column: Hire Date
  dateFormat: MM/DD/YYYY
endDate:
  column: Termination Date
  dateFormat: MM/DD/YYYY
employmentStatus:
  column: Worker Status
  values:
    Active: Active
    Leave of Absence: OnLeave
    Terminated: Terminated
employmentType:
  column: Worker Type
  values:
    Regular: Employee
    Fixed Term: Contractor
    Temporary: Contractor
    Intern: Intern
    Contingent Worker: Vendor
manager:
  column: Manager
  reference: employeeId
`;

/** A BambooHR custom report (or the API's report endpoint as CSV). */
export const BAMBOOHR_MAPPING = `# A BambooHR-shaped export (a custom report, or the API's report endpoint as CSV) -> Employee.
# BambooHR carries no usernames: first.last, then first.middle-initial.last, then a number.
employeeId: "Employee #" # quoted: a bare # starts a YAML comment
username:
  generate:
    - "{First Name}.{Last Name}"
    - "{First Name}.{Middle Name|first:1}.{Last Name}"
  suffix: numeric
givenName: First Name
familyName: Last Name
displayName: Preferred Name
email: Work Email
department: Department
title: Job Title
location: Location
attributes:
  division: Division
startDate: Hire Date
endDate: Termination Date
employmentStatus:
  column: Status
  values:
    Active: Active
    Inactive: Terminated
employmentType:
  column: Employment Status
  values:
    Full-Time: Employee
    Part-Time: Employee
    Contractor: Contractor
    Intern: Intern
    Terminated: Employee
manager:
  column: Supervisor Email
  reference: email
`;

export const EXAMPLE_MAPPINGS: Record<string, string> = {
  workday: WORKDAY_MAPPING,
  bamboohr: BAMBOOHR_MAPPING,
};
