-- Outcomes of defendants in cases completed in the quarter (Criminal Court Statistics and
-- Criminal Justice System statistics, principal offence basis):
--   tried defendants   magistrates': completed defendants not sent to the Crown Court for trial
--                      (every offence SENT TO CROWN COURT); Crown Court: trial cases only
--                      (committals for sentence and appeals were convicted below);
--   convicted          at least one offence convicted in this court;
--   sentenced          a disposal on the principal offence (core.defendant_case); a defendant
--                      committed for sentence is convicted in the magistrates' court and
--                      sentenced in the Crown Court;
--   immediate custody  the principal disposal is immediate custody;
--   average custodial sentence length: mean months (days / 30.4375) of those sentences.
-- Rates: conviction_rate = convicted / tried_defendants; custody_rate = immediate custody /
-- sentenced.

with sent as (
    select defendant_case_id, bool_and(coalesce(verdict, '') = 'SENT TO CROWN COURT') as sent_for_trial
    from {{ ref('offence') }}
    group by defendant_case_id
),

defendants as (
    select
        dc.*,
        coalesce(s.sent_for_trial, false) as sent_for_trial,
        dc.court_type = 'magistrates' and not coalesce(s.sent_for_trial, false)
            or dc.case_type in ('trial_either_way', 'trial_indictable_only') as tried,
        dc.convicted_offence_count > 0 as convicted,
        dc.principal_disposal_type is not null as sentenced
    from {{ ref('defendant_case') }} as dc
    left join sent as s using (defendant_case_id)
    where dc.completion_date is not null
)

select
    q.quarter,
    q.quarter_start,
    q.quarter_end,
    d.court_type,
    d.case_type,
    count(*) as completed_defendants,
    count(*) filter (where d.sent_for_trial) as sent_for_trial,
    count(*) filter (where d.tried) as tried_defendants,
    count(*) filter (where d.tried and d.convicted) as convicted,
    {{ round_figure('count(*) filter (where d.tried and d.convicted) / nullif(count(*) filter (where d.tried), 0)', 4) }}
        as conviction_rate,
    count(*) filter (where d.sentenced) as sentenced,
    count(*) filter (where d.principal_disposal_type = 'immediate_custody') as immediate_custody,
    {{ round_figure("count(*) filter (where d.principal_disposal_type = 'immediate_custody')
          / nullif(count(*) filter (where d.sentenced), 0)", 4) }} as custody_rate,
    {{ round_figure("avg(d.principal_custody_days / 30.4375)
          filter (where d.principal_disposal_type = 'immediate_custody')", 2) }} as average_custodial_sentence_months
from defendants as d
-- An equi-join on the completion's quarter (court_calendar's quarters are calendar quarters), not
-- `between` its bounds, which Spark runs as a nested loop over every quarter.
join {{ ref('court_calendar') }} as q on q.quarter_start = {{ quarter_start('d.completion_date') }}
group by all
order by q.quarter_start, d.court_type, d.case_type
