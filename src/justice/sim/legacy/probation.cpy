      *================================================================*
      * PROBATION.CPY                                                  *
      * NDELIUS OFFENDER-EVENT EXTRACT - MONTHLY DELTA                 *
      * FILES  DELIUS.EXTRACT.DYYMM.DAT, ONE PER CALENDAR MONTH        *
      * RECFM=FB LRECL=250, EBCDIC CODE PAGE 037, NO RECORD DELIMITER  *
      * ONE RECORD PER OFFENDER EVENT CREATED OR CHANGED IN THE MONTH, *
      * SHOWING THE EVENT AS AT THE EXTRACT DATE. THE LATEST RECORD    *
      * FOR A CRN + EVENT-NUMBER SUPERSEDES EARLIER ONES.              *
      * DATES ARE YYYYMMDD; ZERO MEANS NOT RECORDED.                   *
      *================================================================*
       01  DELIUS-EVENT-RECORD.
           05  RECORD-TYPE                 PIC X(2).
               88  RT-OFFENDER-EVENT       VALUE 'EV'.
           05  OFFENDER-KEY.
               10  CRN                     PIC X(7).
               10  EVENT-NUMBER            PIC 9(3).
           05  OFFENDER-DETAILS.
               10  SURNAME                 PIC X(35).
               10  FORENAMES               PIC X(35).
               10  DATE-OF-BIRTH           PIC 9(8).
               10  SEX                     PIC X(1).
                   88  SEX-MALE            VALUE 'M'.
                   88  SEX-FEMALE          VALUE 'F'.
               10  PNC-ID                  PIC X(13).
               10  CRO-NUMBER              PIC X(10).
           05  EVENT-DETAILS.
               10  SUPERVISION-TYPE        PIC X(3).
                   88  ST-COMMUNITY-ORDER  VALUE 'CO '.
                   88  ST-SUSPENDED-ORDER  VALUE 'SSO'.
                   88  ST-LICENCE          VALUE 'LIC'.
               10  START-DATE              PIC 9(8).
               10  PLANNED-END-DATE        PIC 9(8).
               10  TERMINATION-DATE        PIC 9(8).
               10  TERMINATION-REASON      PIC X(2).
                   88  TR-COMPLETED        VALUE 'CM'.
                   88  TR-COMPLETED-BREACH VALUE 'CB'.
                   88  TR-LICENCE-EXPIRED  VALUE 'LE'.
               10  BREACH-DATE             PIC 9(8).
               10  REGION-CODE             PIC X(3).
               10  PDU-CODE                PIC X(6).
               10  ORDER-LENGTH-MONTHS     PIC S9(3).
               10  UPW-HOURS-ORDERED       PIC S9(5)V9 COMP-3.
               10  OGRS-SCORE              PIC S9(3)V99 COMP-3.
           05  AUDIT-DETAILS.
               10  LAST-UPDATED-DATE       PIC 9(8).
               10  EXTRACT-DATE            PIC 9(8).
      * ADDED IN THE FILLER: ETHNICITY, 2011 CENSUS CODE, NS NOT STATED
           05  ETHNICITY-DETAILS.
               10  ETHNIC-ORIGIN           PIC X(2).
           05  FILLER                      PIC X(62).
